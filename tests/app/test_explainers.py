"""The explainer pages keep their promises: How it works checks two course claims with the student's
own numbers, the Gram page computes a layer once, and the words follow the chosen settings."""

from __future__ import annotations

import pytest

from tests.app.apptest import app, no_exception


def _metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def _number(text: str) -> float:
    """A friendly number back as a float ("9.595×10⁵", "10⁻⁷", "−0.5", "4200")."""
    text = text.replace("−", "-")
    head, power = text.rstrip("⁻⁰¹²³⁴⁵⁶⁷⁸⁹"), text[len(text.rstrip("⁻⁰¹²³⁴⁵⁶⁷⁸⁹")):]
    if not power:
        return float(text)
    exponent = int(power.translate(str.maketrans("⁻⁰¹²³⁴⁵⁶⁷⁸⁹", "-0123456789")))
    mantissa = head.removesuffix("10").removesuffix("×")
    return (float(mantissa) if mantissa not in ("", "-") else float(mantissa + "1")) * 10.0 ** exponent


def test_how_it_works_checks_j_content_and_the_weights_on_the_students_latest_run():
    at = app(steps=2, levels=1)
    at.run()
    next(b for b in at.button if b.label == "▶ Run").click().run()
    no_exception(at)
    run = at.session_state["runs"][0]
    at.switch_page("pages/how_it_works.py").run()
    no_exception(at)
    metrics = _metrics(at)
    before, after = run.history[-1].network_checksums
    assert metrics["network checksum when the run began"] == before
    assert metrics["network checksum when it ended"] == after == before
    assert any("The same before and after" in md.value for md in at.markdown)
    assert any(f"your latest run (Run {run.id}" in md.value for md in at.markdown)
    by_hand = _number(metrics["J_content by hand · course (Gatys)"])
    loop = _number(metrics["J_content reported by the loop"])
    assert loop == pytest.approx(run.history[-1].content / run.history[-1].weights["alpha"], rel=1e-3)
    # By hand on the kept 8-bit picture, against the loop's float pixels (and bf16 where chosen).
    assert by_hand == pytest.approx(loop, rel=0.05)
    assert len(at.dataframe[0].value) == 5  # the five largest terms, written out


def test_how_it_works_without_a_run_checks_a_short_run_on_the_chosen_pair():
    at = app()
    at.run()
    at.switch_page("pages/how_it_works.py").run()
    no_exception(at)
    metrics = _metrics(at)
    assert metrics["network checksum when the run began"] == metrics["network checksum when it ended"]
    assert len(metrics["network checksum when it ended"]) == 8
    assert metrics["J_content by hand · course (Gatys)"] == metrics["J_content reported by the loop"]
    assert any("a short run computed for this page" in md.value for md in at.markdown)


def test_how_it_works_words_follow_the_normalization():
    at = app(normalization="mse")
    at.run()
    at.switch_page("pages/how_it_works.py").run()
    no_exception(at)
    text = " ".join(md.value for md in at.markdown)
    assert "**is** averaged" in text and "G does neither" not in text
    assert any("mean-squared" in c.value for c in at.caption)
    assert "J_content by hand · mean-squared" in _metrics(at)
    _style_formula_on_two_lines(at)
    at = app()
    at.run()
    at.switch_page("pages/how_it_works.py").run()
    text = " ".join(md.value for md in at.markdown)
    assert "G does neither" in text and "**is** averaged" not in text
    _style_formula_on_two_lines(at)


def _style_formula_on_two_lines(at):
    """On one line the style cost was wider than a phone and lost its closing bracket."""
    from nst_core.costs import STYLE_SUMS
    broken = [f.value for f in at.latex if STYLE_SUMS in f.value]
    assert broken and all(r"\begin{aligned}" in f and r"\\ &" + STYLE_SUMS in f for f in broken), broken


def test_presentation_mode_says_how_to_reach_the_hidden_settings():
    at = app(present=True)
    at.run()
    at.switch_page("pages/how_it_works.py").run()
    no_exception(at)
    assert any("switch Presentation mode off" in c.value for c in at.caption)


def test_the_gram_page_computes_every_layer_in_one_pass_per_image():
    from ui.cache import _CACHES
    at = app()
    at.run()
    at.switch_page("pages/gram.py").run()
    no_exception(at)
    # Before any run there is only the content image to compare with: said, not offered as a choice of one.
    assert not [r for r in at.radio if r.key == "gram_other"]
    assert any("Compared with the content image" in c.value for c in at.caption)
    grams = next(c for (path, name), c in _CACHES.items() if path.endswith("gram.py") and name == "_layer_grams")
    computed = len(grams)
    assert computed >= 2  # the style image and the one compared with it
    layer_box = next(s for s in at.selectbox if s.label == "Layer")
    for layer in layer_box.options:
        layer_box.select(layer).run()
        no_exception(at)
    assert len(grams) == computed  # no layer ran the network again
    text = " ".join(md.value for md in at.markdown)
    assert "With tiles of" in text and "the Gram matrices by" in text


def test_a_try_this_box_that_needs_the_settings_says_how_to_reach_them_in_presentation_mode():
    at = app(present=True)
    at.run()
    no_exception(at)
    boxes = [i.value for i in at.info if "Try this" in i.value]
    assert boxes and all("Presentation mode is on" in b for b in boxes if "Advanced" in b.split("\n\n")[0])
    assert any("Advanced" in b for b in boxes)  # Stylize's box does send the student there
    at = app()
    at.run()
    assert not any("Presentation mode is on" in i.value for i in at.info)


def test_the_toy_gram_entry_is_shown_under_its_choice_and_falls_from_fire_together_to_never():
    """On a phone the orange matrix is two screens below the choice: the entry the Try this box asks
    to watch is also written under it, for the block as drawn."""
    import torch

    from nst_core import gram_matrix
    from nst_core.analysis import TOY_KINDS, toy_block
    at = app()
    at.run()
    at.switch_page("pages/gram.py").run()
    shown = {}
    for kind in TOY_KINDS:
        next(r for r in at.radio if r.key == "toy_kind").set_value(kind).run()
        no_exception(at)
        shown[kind] = _number(_metrics(at)["G[0, 1] of this block"])
        block: torch.Tensor = toy_block(kind, seed=0)
        assert shown[kind] == pytest.approx(float(gram_matrix(block)[0, 1]), rel=0.01)
    assert shown["correlated"] > shown["random"] > shown["anticorrelated"] == 0
