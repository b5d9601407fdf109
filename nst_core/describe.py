"""Words for the pages: run captions, friendly numbers, labels that tell runs apart, and honest notes
about the weights. Pure functions of configs and records, so every page says the same thing the
same way and a test can read it."""

from __future__ import annotations

import math
from dataclasses import asdict, is_dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .serve.states import QueueStatus
    from .transfer import Step

# How each setting is named when it is shown to a student; None hides it (it changes no picture).
FIELD_WORDS: dict[str, str | None] = {
    "network": "network", "content_layer": "content layer", "style_layers": "style layers",
    "style_weights": "λ", "alpha": "α", "beta": "β", "tv_weight": "TV", "balance": "balance",
    "normalization": "cost formula", "optimizer": "optimizer", "lr": "learning rate", "steps": "steps",
    "init": "start", "size": "size", "style_scale": "style scale", "levels": "levels", "seed": "seed",
    "pooling": "pooling", "precision": "precision", "preserve_color": "colour preservation",
    "style_blend": "blend", "snapshot_every": None,
}
_INITS = {"content": "the content photo", "noise": "random noise", "style": "the style image"}
# The cost formula's stored values stay "seed" and "mse" so old links still open; a student reads
# these words instead, since "seed" beside the random seed read as a number to pick.
NORMALIZATION_WORDS = {"seed": "course (Gatys)", "mse": "mean-squared"}
_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def friendly_number(x: float, digits: int = 3) -> str:
    """A number a student can read aloud: 0.25, 1.63, 4200, 2×10⁻⁷ (never 2e-07)."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if x == 0:
        return "0"
    if isinstance(x, float) and math.isinf(x):
        return "∞" if x > 0 else "−∞"
    if 1e-3 <= abs(x) < 1e5:
        text = f"{x:.{digits}g}"
        return (text if "e" not in text else f"{x:.0f}").replace("-", "−")
    exponent = math.floor(math.log10(abs(x)))
    mantissa = float(f"{x / 10 ** exponent:.{digits}g}")
    if abs(mantissa) >= 10:  # 9.9996 rounds up a decade
        mantissa, exponent = mantissa / 10, exponent + 1
    power = "10" + str(exponent).translate(_SUPERSCRIPT)
    sign = "−" if mantissa < 0 else ""
    return f"{sign}{power}" if abs(mantissa) == 1 else f"{sign}{abs(mantissa):.{digits}g}×{power}"


def _settings(settings) -> dict:
    return asdict(settings) if is_dataclass(settings) else dict(settings)


def normalization_label(value: str) -> str:
    """The cost formula's name for a student: ``course (Gatys)`` for the stored value ``seed``."""
    return NORMALIZATION_WORDS.get(value, str(value))


def _value(key: str, value) -> str:
    if key == "normalization":
        return normalization_label(value)
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, (int, float)):
        return friendly_number(float(value)) if isinstance(value, float) else str(value)
    if isinstance(value, (list, tuple)):
        return "/".join(_value(key, v) for v in value)
    if value is None:
        return "default" if key != "style_blend" else "one style"
    return str(value)


def differing_labels(settings_list: list[dict]) -> list[str]:
    """A label per run naming only the settings that differ between the runs (``β 5 · start noise``).

    Settings every run shares are left out: they do not tell the runs apart. Runs whose shown
    settings are all the same are numbered (``same settings, run 2``), so no two labels collide.
    Accepts settings dicts or :class:`~nst_core.transfer.TransferConfig` objects.
    """
    dicts = [_settings(s) for s in settings_list]
    keys = [k for k in dict.fromkeys(k for d in dicts for k in d) if FIELD_WORDS.get(k, k) is not None]
    differ = [k for k in keys if len({repr(d.get(k)) for d in dicts}) > 1]
    labels = [" · ".join(f"{FIELD_WORDS.get(k, k)} {_value(k, d.get(k))}" for k in differ) for d in dicts]
    if len(set(labels)) < len(labels) or not differ:
        labels = [f"{label + ' · ' if label else 'same settings, '}run {i + 1}" for i, label in enumerate(labels)]
    return labels


def _style_part(s: dict) -> str:
    layers = list(s.get("style_layers") or ())
    if not layers or not s.get("beta"):
        return "no style layers"
    lam = s.get("style_weights")
    if lam is None or len({round(v, 6) for v in lam}) == 1:
        text = f"style {', '.join(layers)} (equal λ{' before balancing' if s.get('balance') == 'auto' else ''})"
    else:
        text = "style " + ", ".join(f"{n} (λ {friendly_number(v, 2)})" for n, v in zip(layers, lam))
    blend = s.get("style_blend")
    if blend and len(blend) > 1:
        total = sum(blend) or 1.0
        text += ", styles blended " + " / ".join(f"{round(100 * b / total)}%" for b in blend)
    return text


def run_caption(settings, network: str | None = None, name_network: bool = True) -> str:
    """Every setting that shapes the picture, in one line of words (``settings`` is a
    ``TransferConfig`` or its dict; a ``network`` key in the dict is used if ``network`` is None).
    ``name_network=False`` leaves the network out, for a caption that describes it in a sentence
    of its own."""
    s = _settings(settings)
    network = (network or s.get("network")) if name_network else None
    balance = ("auto-balanced: each term is measured against a blank image first" if s.get("balance") == "auto"
               else "raw weights, as typed")
    size = f"{s.get('size')} px"
    if s.get("levels", 1) > 1:
        size += f" in {s['levels']} levels (coarse to fine)"
    optimizer = {"adam": "Adam", "lbfgs": "L-BFGS"}.get(s.get("optimizer"), s.get("optimizer"))
    tv = s.get("tv_weight") or 0
    parts = [
        f"content {s.get('content_layer')}" if s.get("alpha") else "no content term",
        _style_part(s),
        f"α {friendly_number(s.get('alpha', 0))} : β {friendly_number(s.get('beta', 0))}, {balance}",
        f"smoothing (TV) {friendly_number(tv)}" if tv else "no smoothing (TV)",
        "content colours kept" if s.get("preserve_color") else "colours from the style",
        f"{s.get('pooling', 'max')} pooling",
        f"{optimizer}, learning rate {friendly_number(s.get('lr', 0))}, {s.get('steps')} steps",
        size,
        f"start from {_INITS.get(s.get('init'), s.get('init'))}",
        f"precision {s.get('precision', 'auto')}",
        f"seed {s.get('seed', 0)}",
    ]
    if s.get("normalization", "seed") != "seed":
        parts.insert(3, f"cost formula {normalization_label(s['normalization'])}")
    if network:
        parts.insert(0, str(network))
    return " · ".join(parts)


def size_label(size: tuple[int, int]) -> str:
    """An image size (H, W), as a record keeps it, written as a student reads it: ``192×128``
    (width first)."""
    h, w = size
    return f"{w}×{h}"


def cost_shares(record: Step) -> dict[str, float]:
    """Each weighted term's share of J(G): ``{"content": 0.38, "style": 0.62, "tv": 0.0}``."""
    parts = {k: max(float(getattr(record, k) or 0.0), 0.0) for k in ("content", "style", "tv")}
    parts = {k: 0.0 if math.isnan(v) else v for k, v in parts.items()}
    total = sum(parts.values())
    return {k: (v / total if total > 0 else 0.0) for k, v in parts.items()}


def objective_terms(record: Step) -> tuple[str, ...]:
    """The cost terms the run descends: "content" unless α = 0 and "style" unless β = 0. A
    reconstruction has one of them only, and "content 0%" said nothing about a style reconstruction."""
    weights = record.weights or {}
    return tuple(term for term, key in (("content", "alpha"), ("style", "beta")) if weights.get(key, 1.0) != 0)


def share_text(record: Step) -> str:
    """``style 62% of the cost, content 38%`` (and smoothing when it carries at least 1%); a term
    the run does not have (α or β = 0) is left out."""
    shares = cost_shares(record)
    names = {"style": "style", "content": "content", "tv": "smoothing (TV)"}
    terms = objective_terms(record)
    shown = [(k, v) for k, v in sorted(shares.items(), key=lambda kv: -kv[1])
             if (k != "tv" or v >= 0.01) and (k == "tv" or k in terms)]
    if not shown or sum(v for _, v in shown) == 0:
        return "no cost yet"
    first, *rest = shown
    text = f"{names[first[0]]} {first[1]:.0%} of the cost"
    return text + "".join(f", {names[k]} {v:.0%}" for k, v in rest)


def layer_share_text(record: Step) -> str:
    """Which style layer carries most of β·J_style: ``conv1_1 carries 45% of the style cost``."""
    layers = {name: float(v) for name, v in record.style_layers.items()}
    total = sum(layers.values())
    if total <= 0:
        return "no style cost"
    top = max(layers, key=layers.get)
    return f"{top} carries {layers[top] / total:.0%} of the style cost"


def progress_text(record: Step, left: str = "") -> str:
    """One progress line: ``Step 12 of 40 · cost 1.63 (style 62% of the cost, content 38%) · 5 s,
    about 25 s left``. Takes a ``transfer.Step`` and the time left in words
    (``serve.estimate.time_left_text``); the loop's own ``eta`` charges all set-up to step 1."""
    line = (f"Step {record.step} of {record.total_steps} · cost {friendly_number(record.total)} "
            f"({share_text(record)}) · {record.elapsed:.0f} s")
    return line + (f", {left}" if left else "")


def ready_text(ready_s: float, computing_s: float | None) -> str:
    """How long a student waited for a result, split into the time before the computation began (the
    queue, or earlier runs of the same batch) and the computation, when the computation began a
    second or more after their Run (one joined midway or served from the cache began before it)."""
    text = f"Ready {ready_s:.0f} s after Run"
    if computing_s is not None and 0 < computing_s <= ready_s - 1:  # a wait under a second is not news
        text += f": {ready_s - computing_s:.0f} s before it started, {computing_s:.0f} s computing"
    return text + "."


def took_text(record: Step, estimated_s: float) -> str:
    """The run's time beside the estimate announced before it. A run that ended early (stopped,
    diverged, failed) is set beside the estimate for its whole plan, never as if the two compared."""
    if record.step >= record.total_steps:
        return f"⏱ Took {record.elapsed:.1f} s; estimated beforehand: {estimated_s:.1f} s."
    return (f"⏱ Ended after {record.elapsed:.1f} s, at step {record.step} of {record.total_steps}; "
            f"all {record.total_steps} steps were estimated at {estimated_s:.1f} s.")


def queue_text(status: QueueStatus | None, slots: int) -> str:
    """What a student whose run has not started yet is told. Nothing ahead and no wait for memory
    means the run was admitted a moment before its page looked: it is starting, not queued."""
    if status is None or (status.ahead == 0 and not status.memory_bound):
        return "Starting…"
    if status.memory_bound:
        return "Waiting for memory on this server: it starts when a running picture finishes."
    return (f"Queued behind {status.ahead} run(s) on this server's {slots} slot(s): about {status.wait_s:.0f} s. "
            "It starts by itself.")


def describe_weights(source: str, arch: str, file_name: str | None = None) -> str:
    """One honest line about the loaded network (``source`` as in ``VGGFeatures.source``)."""
    arch = arch.upper()
    if source == "imagenet":
        return f"{arch} trained on ImageNet photos (torchvision), as in the paper."
    if source == "random":
        return f"{arch} with random, untrained weights: it has learned nothing, a contrast to the trained nets."
    if _is_hed(file_name):
        return (f"{arch} from an edge detector (HED): ImageNet filters fine-tuned to find edges, "
                "so close to ImageNet VGG16 but not the same. Works offline.")
    return f"{arch} with weights from the local file {file_name or 'given'}."


def offline_notice(arch: str, using: str, trained: bool) -> str:
    """What to tell a class when the ImageNet weights cannot be downloaded: what happened, what the
    app does instead (``using``, a ``trained`` network or not), and what a teacher can do, with no
    error text and no command-line flags."""
    pictures = ("and the pictures differ a little from the paper's" if trained else
                "but the pictures of an untrained network are noisy and washed out, far from the paper's")
    return (f"This server cannot download the ImageNet {arch.upper()} weights (it has no internet "
            f"access, or the download failed). The app is using {using} instead; every page works, "
            f"{pictures}. To get the ImageNet network, start the app once on a machine that is online "
            "(the download is kept), or choose another network in the sidebar.")


def level_switches(history: list[Step]) -> list[dict]:
    """Where a coarse-to-fine run moved to a larger image: step, sizes (H, W), and the cost just
    before and just after (the cost is measured afresh on the new image, so it can jump up)."""
    out = []
    for prev, rec in zip(history, history[1:]):
        if prev.size != rec.size:
            out.append({"step": rec.step, "from": prev.size, "to": rec.size,
                        "before": prev.total, "after": rec.total})
    return out


def filmstrip_steps(steps: list[int], switches: list[int], n: int = 6) -> list[tuple[int, bool]]:
    """Which of a run's snapshot ``steps`` a filmstrip shows, each with whether it is the first
    after a level switch in ``switches`` (where G jumps to a larger image): the first, the last and
    those nearest to ``n`` evenly spaced steps between (picking every k-th snapshot left uneven
    gaps), and every such first one."""
    if not steps:
        return []
    targets = [steps[0] + k * (steps[-1] - steps[0]) / (n - 1) for k in range(n)]
    after_switch = {next((s for s in steps if s >= switch), steps[-1]) for switch in switches}
    shown = {min(steps, key=lambda s: abs(s - t)) for t in targets} | after_switch
    return [(s, s in after_switch) for s in sorted(shown)]


def level_switch_note(history: list[Step]) -> str:
    """One sentence per level switch, for under the cost curve: why J jumps although no step raised it."""
    notes = []
    for s in level_switches(history):
        size_from, size_to = size_label(s["from"]), size_label(s["to"])
        change = "jumps" if s["after"] > s["before"] else "moves"
        notes.append(f"At step {s['step']} the run moved from {size_from} px to a new, larger image of {size_to} px. "
                     f"The cost is now measured on that image, so J {change} from {friendly_number(s['before'])} "
                     f"to {friendly_number(s['after'])}; within each size, the steps lower it.")
    return " ".join(notes)


def gram_entry_text(parts: dict, k: int, k2: int) -> str:
    """A Gram entry in words, from ``analysis.gram_parts``: the sum of products, and how much of it
    is the channels firing together (their cross-covariance) versus merely both being active."""
    n = parts["positions"]
    together = n * parts["covariance"]
    return (f"G[{k}, {k2}] = {friendly_number(parts['gram'])}: the sum of the products at all {n} positions. "
            f"It splits into {n} × cross-covariance = {friendly_number(together)} (do they fire *together*?) "
            f"plus {n} × mean·mean = {friendly_number(parts['means'])} (are both simply active?). "
            f"That is why the course calls G an unnormalized cross-covariance: nothing is averaged and the "
            f"means are not removed. Their correlation is {parts['correlation']:+.2f}.")


def toy_order_text(entries: dict[str, dict], words: dict[str, str]) -> str:
    """The toy Gram entries side by side, largest first, with ``>`` or ``=`` between them:
    ``fire together 4.1 > independent 1.9 > never fire together 0`` (``entries`` from
    ``analysis.toy_entries``, ``words`` each case's name for a student)."""
    ranked = sorted(entries.items(), key=lambda kv: -kv[1]["gram"])

    def number(e: dict) -> str:  # two significant figures each: "5.4 > 2.53" mixed one and two decimals
        return friendly_number(e["gram"], 2)

    text = f"{words[ranked[0][0]]} {number(ranked[0][1])}"
    for (_, prev), (kind, e) in zip(ranked, ranked[1:]):
        text += f" {'>' if number(prev) != number(e) else '='} {words[kind]} {number(e)}"
    return text


def _is_hed(file_name: str | None) -> bool:
    return bool(file_name) and "hed" in file_name.lower()


def _network_parts(description: str) -> tuple[str, str, str | None]:
    """(source, arch, file name), as :func:`describe_weights` takes them, from a network's description (``VGGFeatures.description``, such as
    ``VGG16, weights from x.pth``), which is all a finished run keeps of its network."""
    arch = description.split(",", 1)[0].lower()
    if "weights from " in description:
        return "file", arch, description.split("weights from ", 1)[1]
    return "random" if "random" in description else "imagenet", arch, None


def describe_network(description: str) -> str:
    """:func:`describe_weights` from a network's description."""
    return describe_weights(*_network_parts(description))


def network_name(description: str) -> str:
    """A few words naming a network for a caption, e.g. "VGG16 from an edge detector (HED)"."""
    source, arch, file_name = _network_parts(description)
    arch = arch.upper()
    if source == "file":
        return f"{arch} from an edge detector (HED)" if _is_hed(file_name) else f"{arch} from {file_name}"
    return f"{arch} with random weights" if source == "random" else f"{arch} trained on ImageNet"


def describe_model(model) -> str:
    """:func:`describe_weights` for a loaded ``VGGFeatures``."""
    return describe_network(model.description)


def used_weights_text(weights: dict, balance: str = "raw") -> str:
    """The α, β and λ a run actually used (``Step.weights``), in readable numbers, and with the
    automatic ``balance`` why they differ from the typed ones: beside "α 1 : β 5 (equal λ)" a
    student saw α = 2×10⁻⁷ and λ four thousandfold apart, with nothing to say how they are related."""
    if not weights:
        return ""
    lambdas = weights.get("lambdas") or {}
    text = f"α = {friendly_number(weights.get('alpha', 0.0))}, β = {friendly_number(weights.get('beta', 0.0))}"
    if lambdas:
        text += "; λ: " + ", ".join(f"{name} {friendly_number(v)}" for name, v in lambdas.items())
    if balance == "auto":
        return text + (". Balanced: the typed α was divided by the content cost of a blank image, and each typed "
                       "λ by its layer's style cost of a blank image, so every term starts on a comparable scale; "
                       "that is why these numbers are tiny or huge")
    return text + ", as typed"


def shuffle_text(layers, tile: tuple[int, int]) -> str:
    """What the shuffle bars show, in words that follow the numbers (``layers`` are
    ``checks.ShuffleLayer`` rows, ``tile`` a tile's (height, width) in pixels): how far the
    activations and the Grams moved, which Gram moved most and why, and any layer where the Gram
    moved about as much as the activations, so the page never promises what its bars do not show."""
    if not layers:
        return ""
    acts = [r.activations for r in layers]
    grams = [r.gram for r in layers]
    most = max(layers, key=lambda r: r.gram)
    text = (f"With tiles of {tile[1]}×{tile[0]} px, the activations moved by **{min(acts):.0%} to {max(acts):.0%}** "
            f"of their size, the Gram matrices by **{min(grams):.0%} to {max(grams):.0%}**. ")
    close = [r for r in layers if r.gram >= 0.6 * r.activations]
    if not close:
        text += "At every layer the Gram moved far less than the activations: the style stayed, the layout did not. "
    text += (f"The Gram that moved most is {most.layer}'s ({most.gram:.0%}): its units see {most.receptive_field} px, "
             + ("wider than a tile, so many of them straddle a seam" if most.receptive_field > min(tile)
                else "and those on a seam see an edge between two tiles")
             + ", and a seam is an edge the picture never had.")
    if close:
        names = ", ".join(r.layer for r in close)
        text += (f" At {names} the Gram moved {'nearly ' if all(r.gram < r.activations for r in close) else ''}"
                 "as much as the activations: with tiles this small, the seams are a large part of what "
                 f"{'that layer sees' if len(close) == 1 else 'those layers see'}. Fewer tiles keep the style.")
    return text
