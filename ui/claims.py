"""Two course claims that How it works lets a student check with numbers instead of taking on
trust: J_content added up by hand, and a network whose weights do not change while G's pixels do.

The numbers come from the student's latest finished run when there is one on the network in use,
else from a short run on the chosen pair computed once for the server (a few Adam steps at 128 px).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, replace

import numpy as np
import streamlit as st
from PIL import Image

from nst_core import Step, to_pil
from nst_core.checks import ContentCheck, as_normalization, content_cost_by_hand, loop_content_cost, weights_checksum
from nst_core.describe import friendly_number, network_name, normalization_label
from nst_core.transfer import preset_config, run
from ui import pickers
from ui.cache import shared
from ui.runs import GALLERY

# Adam, one network pass a step: a few seconds; L-BFGS's line searches took several times longer.
DEMO_SIZE, DEMO_STEPS = 128, 6


@dataclass
class Evidence:
    """What both checks read: the images, the loop's final record and the settings it ran with."""

    source: str  # where the numbers come from, in words
    first: Image.Image  # G after step 1
    final: Image.Image  # the image the run kept
    final_step: Step
    check: ContentCheck
    normalization: str
    quantized: bool  # the final image is the run's 8-bit PNG, not the loop's float pixels
    precision: str
    first_step: int = 1


@shared(max_mb=4, spinner="Adding up the content cost by hand…", heavy=True)
def _check_png(model, content, final_png, layer, pooling):
    final = Image.open(io.BytesIO(final_png)).convert("RGB")
    return content_cost_by_hand(model, content, final, layer, pooling)


@shared(max_mb=4, spinner=f"A short run for these checks ({DEMO_STEPS} steps at {DEMO_SIZE} px)…", heavy=True)
def _demo(model, content, style, layer, pooling, normalization):
    """A short run on the chosen pair, in fp32 so the loop's sum and the one by hand are the same
    arithmetic; returns the first and kept images, the final record, and the check by hand on the
    kept image's float pixels."""
    config = preset_config("Quick", size=DEMO_SIZE, steps=DEMO_STEPS, levels=1, content_layer=layer, pooling=pooling,
                           normalization=normalization, precision="fp32", optimizer="adam", lr=0.05)
    first = final = None
    for step in run(content, style, config, model):
        if first is None and step.image is not None:
            first = to_pil(step.image)
        final = step
    check = content_cost_by_hand(model, content, final.best_image, layer, pooling)
    return to_pil(final.best_image), first, replace(final, best_image=None, image=None), check


def _latest_run(model):
    """The newest finished run of this session on the network in use, whose content image can still
    be found (a bundled photo, or the upload chosen now); None otherwise."""
    for record in st.session_state.get(GALLERY, []):
        if record.image is None or record.last is None or record.model != model.description:
            continue
        name = record.settings.get("content")
        current_name, current = pickers.chosen("content", "content")
        if name == current_name and current is not None:
            return record, current
        if name in pickers.catalogue("content"):
            return record, pickers.bundled_image("content", name)
    return None


def evidence(model, content, style, settings: dict) -> Evidence:
    found = _latest_run(model)
    if found is not None:
        record, content_img = found
        s = record.settings
        layer, pooling = s.get("content_layer", "conv4_2"), s.get("pooling", "max")
        check = _check_png(model, content_img, record.image, layer, pooling)
        final = Image.open(io.BytesIO(record.image)).convert("RGB")
        first_step, first_bytes = record.snapshots[0] if record.snapshots else (0, record.image)
        first = Image.open(io.BytesIO(first_bytes)).convert("RGB")
        return Evidence(f"your latest run (Run {record.id}: {record.label})", first, final, record.last, check,
                        s.get("normalization", "seed"), True, model.precision_label(s.get("precision", "auto")),
                        first_step)
    layer, pooling, norm = settings["content_layer"], settings["pooling"], settings["normalization"]
    if layer not in model.table:
        layer = "conv4_2" if "conv4_2" in model.table else next(iter(model.table))
    final, first, last, check = _demo(model, content, style, layer, pooling, norm)
    return Evidence(f"a short run computed for this page ({DEMO_STEPS} Adam steps at {DEMO_SIZE} px on the pair "
                    "chosen on Stylize; press Run there to check your own)", first, final, last, check, norm, False,
                    "fp32")


def _mean_change(a: Image.Image, b: Image.Image) -> float:
    """Mean absolute difference of two pictures' pixel values, on the 0–255 scale."""
    b = b.resize(a.size) if b.size != a.size else b
    return float(np.abs(np.asarray(a, dtype=np.float32) - np.asarray(b, dtype=np.float32)).mean())


def content_check(ev: Evidence) -> None:
    """J_content of ``ev`` added up by hand, beside the value the loop reported."""
    check = ev.check
    n_H, n_W, n_C = check.shape
    by_hand, formula = as_normalization(check, ev.normalization)
    loop = loop_content_cost(ev.final_step)
    st.markdown(f"**Check it on {ev.source}.** Layer {check.layer} has n_H × n_W × n_C = {n_H} × {n_W} × {n_C} = "
                f"{n_H * n_W * n_C:,} activations. The five terms ½·(a(C) − a(G))² that weigh most, at row i, "
                "column j, channel k:")
    # Short headers, the formula's own letters: six long ones did not fit a phone, and the last was cut off.
    st.dataframe([{"i": t.row, "j": t.column, "k": t.channel, "a(C)": friendly_number(t.a_C),
                   "a(G)": friendly_number(t.a_G), "½(a(C)−a(G))²": friendly_number(t.half_square)}
                  for t in check.terms], hide_index=True, width="stretch")
    rest = n_H * n_W * n_C - len(check.terms)
    scale = "" if ev.normalization == "seed" else " then × 2 / (n_H·n_W·n_C), the mean-squared formula,"
    c1, c2 = st.columns(2)
    c1.metric(f"J_content by hand · {normalization_label(ev.normalization)}", friendly_number(by_hand, 4),
              help=f"These five terms plus the other {rest:,}, added up here in float64{scale} on the picture "
                   "the run kept.")
    if loop is None:
        c2.metric("J_content reported by the loop", "–", help="This run had no content term (α = 0).")
        return
    c2.metric("J_content reported by the loop", friendly_number(loop, 4),
              help="α·J_content of the run's last step, divided by the α it used.")
    gap = abs(by_hand - loop) / max(abs(loop), 1e-30)
    why = []
    if ev.quantized:
        why.append("the kept picture is stored with whole-number pixel values 0–255")
    if not ev.precision.startswith("float32") and ev.precision != "fp32":
        why.append(f"the loop ran the network in {ev.precision.split(' ')[0]}, the sum by hand in float32")
    if ev.final_step.best_total < ev.final_step.total:
        why.append("the run kept an earlier, better step than its last")
    st.caption(f"They differ by {gap:.2%}" + (f": {'; '.join(why)}." if why and gap > 1e-4 else ".")
               + f" The loop's own function, costs.content_cost, gives {friendly_number(formula, 6)} on the same "
                 "activations as the sum by hand.")


def weights_check(ev: Evidence, model) -> None:
    """The network's checksum when the run began and when it ended, beside the pixels that moved."""
    sums = ev.final_step.network_checksums
    now = _checksum(model)
    n_weights = sum(p.numel() for p in model.parameters())
    c1, c2, c3 = st.columns([1, 1, 1.2])
    c1.image(ev.first, caption=f"G after step {ev.first_step}", width="stretch")
    c2.image(ev.final, caption=f"G at the end (step {ev.final_step.step})", width="stretch")
    before, after = sums if sums else (None, None)
    with c3:
        st.metric("network checksum when the run began", before or "not taken")
        st.metric("network checksum when it ended", after or "not taken")
        st.caption(f"CRC-32 of all {n_weights:,} weights and biases of {network_name(model.description)}; any one "
                   f"changed bit changes it. Now: {now}.")
    moved = _mean_change(ev.first, ev.final)
    if sums and before == after:
        st.markdown(f"**The same before and after**, while the pixels of G moved by {moved:.1f} of 255 on average "
                    "between these two pictures: gradient descent changed the image, and not one weight.")
    elif sums:
        st.warning(f"The checksums differ ({before} → {after}): something changed the network during this run.")
    else:
        st.markdown("This run stopped before its end, so the loop took no checksum at the end; the checksum now is "
                    f"{now}. A run that finishes records both.")


@shared(max_mb=1)
def _checksum(model):
    return weights_checksum(model)
