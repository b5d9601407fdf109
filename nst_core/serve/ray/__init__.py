"""Runs on a Ray cluster: the app process is a Ray driver, the runs compute in worker processes.

Chosen by ``NST_RAY_ADDRESS`` (:func:`nst_core.serve.backend.backend_from_env`); nothing else in
the app imports Ray. Operator's guide: docs/ray.md.

Three kinds of process take part:

- **The app processes** (drivers, ``ray.init(address=...)`` on a node of the cluster). Each
  refuses bad images and runs over the ceiling itself (:meth:`RayBackend.start`), before anything
  reaches the cluster, and keeps one *mirror* per run it watches: one thread that long-polls the
  registry for what changed and fans it out to every session of that process watching the run. So
  the registry hears from each app process once per run, never once per student.
- **The registry** (:class:`Registry`): one named, detached, asynchronous actor
  (``nst_registry`` in namespace ``nst``) shared by every app process attached to the cluster. It
  maps run keys to runs in flight, so identical runs are computed once cluster-wide; it keeps the
  queue (a session keeps at most one waiting run), the watchers of each run and their leases, and
  the finished results, bounded in bytes and in count, so any app process can serve them.
- **The workers** (:class:`Worker`): one actor per worker process, each holding the networks it
  has used (one copy per :class:`~nst_core.serve.backend.NetworkSpec`), on its GPU where its node
  has one. A run is one streaming call (``num_returns="streaming"``): the worker drives
  ``nst_core.transfer.run`` and yields small records of the steps it computed, at step 1 and then
  at most ten times a second, its images already encoded (JPEG thumbnails and previews, the best
  image as PNG at most about once a second). Stop is a flag the worker's loop reads after every
  step.

A worker process that dies mid-run fails that run alone: its watchers keep the best image the
registry last received and read that the worker stopped; Ray restarts the worker, and the other
runs go on.

One module per role: :mod:`.common` (names, settings, the records that travel, the app process's
checks), :mod:`.worker`, :mod:`.registry`, :mod:`.driver` (the app process's side) and
:mod:`.admin` (``python -m nst_core.serve.ray status|restart``).
"""

from ...lazy import exports

__getattr__, __all__ = exports(__name__, {
    ".admin": ("shutdown_service",),
    ".common": ("REGISTRY_NAME", "WORKER_PREFIX", "check_address", "check_image", "ray_settings"),
    ".driver": ("RayBackend", "RayHandle"),
})
