"""The worker actor: one per worker process, holding the networks it has used and computing one
run per streaming call (see the package's docstring)."""

from __future__ import annotations

import logging
import os
import pickle
import threading
import time
from collections import OrderedDict
from dataclasses import replace
from typing import TYPE_CHECKING

from .common import BEST_EVERY_S, MODELS_PER_WORKER, TICK_S, Tick, _encode, own_rss_mb

if TYPE_CHECKING:
    from ..backend import NetworkSpec

log = logging.getLogger(__name__)


class Worker:
    """One worker process: it keeps its networks loaded and computes one run per streaming call.

    Threaded (``max_concurrency``), so :meth:`stop` is heard while :meth:`run` computes."""

    def __init__(self, threads: int = 1):
        import torch
        self.threads = threads
        torch.set_num_threads(max(1, threads))
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self._models: OrderedDict = OrderedDict()
        self._models_lock = threading.Lock()
        self._stops: dict[str, str] = {}
        self.runs = 0

    def pid(self) -> int:
        return os.getpid()

    def rss_mb(self) -> float:
        return own_rss_mb()

    def info(self) -> dict:
        return {"pid": os.getpid(), "device": self.device, "threads": self.threads, "runs": self.runs,
                "models": [s.arch + "/" + s.weights for s in self._models]}

    def stop(self, run_id: str, message: str) -> None:
        self._stops[run_id] = message

    def _model(self, spec: NetworkSpec):
        with self._models_lock:
            if spec in self._models:
                self._models.move_to_end(spec)
                return self._models[spec]
            model = spec.load(self.device)
            self._models[spec] = model
            while len(self._models) > MODELS_PER_WORKER:
                self._models.popitem(last=False)
            return model

    def run(self, run_id: str, request: bytes, work_gflop: float | None, max_run_s: float):
        """Compute one run, its :class:`~nst_core.serve.backend.RunRequest` pickled by the app
        process, yielding a :class:`Tick` at step 1, then at most every ``TICK_S``; the last one
        carries the final state. Stop, the work cap and the wall backstop are checked after every
        step."""
        # Imported here, not above: the registry imports this module to start workers, without PyTorch.
        from ...transfer import run as transfer_run
        from ..lifecycle import SNAPSHOT_SIDE, WALL_BACKSTOP
        self.runs += 1
        gen = best_tensor = best_sent = latest_image = None
        step, best_at, sent_at = 0, 0.0, 0.0
        steps, snapshots = [], []

        def tick(final: bool = False, **ending) -> Tick:
            nonlocal best_sent, best_at, latest_image, steps, snapshots
            best = None
            if best_tensor is not None and best_tensor is not best_sent and (
                    final or snapshots or time.monotonic() - best_at >= BEST_EVERY_S):
                best, best_sent, best_at = _encode(best_tensor, "PNG"), best_tensor, time.monotonic()
            preview = None if latest_image is None else (latest_image[0], _encode(latest_image[1], "JPEG", quality=90))
            out = Tick(tuple(steps), tuple(snapshots), preview, best, **ending)
            steps, snapshots, latest_image = [], [], None
            return out

        try:
            request = pickle.loads(request)  # from the cluster's own app processes
            model = self._model(request.network)
            gen = transfer_run(request.content, list(request.styles), request.config, model)
            started = time.monotonic()
            for rec in gen:
                step, best_tensor = rec.step, rec.best_image
                steps.append(replace(rec, best_image=None, image=None))
                if rec.image is not None:
                    snapshots.append((rec.step, _encode(rec.image, "JPEG", SNAPSHOT_SIDE)))
                    latest_image = (rec.step, rec.image)
                now = time.monotonic()
                if rec.status != "running":
                    yield tick(True, state=rec.status, message=rec.message)
                    return
                stop = self._stops.pop(run_id, None)
                if stop is not None:
                    yield tick(True, state="stopped", message=stop)
                    return
                if work_gflop is not None and rec.gflop > work_gflop:
                    yield tick(True, state="capped", message=(
                        f"Stopped at step {rec.step} of {rec.total_steps}: this run needed more work than a run may do "
                        f"on this shared server (about {max_run_s:g} s of it when free). The best image so far is kept."))
                    return
                if now - started >= WALL_BACKSTOP * max_run_s:
                    yield tick(True, state="capped", message=(
                        f"Stopped at step {rec.step} of {rec.total_steps}: it ran for {WALL_BACKSTOP * max_run_s:g} s, "
                        f"far past the {max_run_s:g} s a run may take on this shared server. The best image so far "
                        "is kept."))
                    return
                if rec.step == 1 or now - sent_at >= TICK_S:
                    sent_at = now
                    yield tick()
            yield tick(True, state="done", message="Finished.")  # a loop of no steps
        except Exception as exc:  # noqa: BLE001 - one bad run must not take the worker down
            log.exception("run %s failed", run_id[:8])
            yield tick(True, state="failed", message=f"The run failed at step {step}: {exc}")
        finally:
            if gen is not None:
                gen.close()
            self._stops.pop(run_id, None)
