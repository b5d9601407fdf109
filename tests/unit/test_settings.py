"""The table of settings: defaults, links, presets, the CLI (engine only: no Streamlit)."""

from __future__ import annotations

import argparse
from dataclasses import fields

import pytest

from nst_core.settings import (BY_URL, DEFAULT_CONFIG, PRESET_KEYS, SETTINGS, TABLE, ab_choices, add_cli_options,
                               cli_values, config_from, defaults, parse_query, to_query)
from nst_core.transfer import PRESETS, TransferConfig, preset_config

CONTEXT = {"layers": ["conv1_1", "conv2_1", "conv2_2", "conv3_1", "conv4_1", "conv4_2", "conv5_1"],
           "sources": ["random", "imagenet"], "content": ["chelsea_cat"], "style": ["flow_brush", "stained_glass"]}


def test_defaults_are_the_engines_and_the_default_presets():
    d = defaults()
    assert config_from(d) == DEFAULT_CONFIG
    for key in PRESET_KEYS:  # what a preset sets is a setting of the table
        assert key in SETTINGS and SETTINGS[key].field == key


def test_every_engine_field_a_student_can_set_is_in_the_table_once():
    engine = {s.field for s in TABLE if s.field}
    assert len(engine) == len([s for s in TABLE if s.field])
    assert len(BY_URL) == len([s for s in TABLE if s.url])
    config_fields = {f.name for f in fields(TransferConfig)}
    assert engine <= config_fields
    # Left to the engine on purpose: derived (style_blend from blend), or internal knobs.
    assert config_fields - engine == {"style_blend", "snapshot_every"}


def test_a_link_round_trips():
    values = {**defaults(), "content_layer": "conv2_2", "init": "noise", "normalization": "mse", "steps": 7,
              "lr": 0.125, "style_layers": ["conv1_1", "conv3_1"], "style_weights": {"conv1_1": 0.75},
              "preserve_color": True, "weights_source": "random", "content": "chelsea_cat", "style": "flow_brush",
              "style2": "stained_glass"}
    query = to_query(values)
    parsed, notices = parse_query({k: [v] for k, v in query.items()}, CONTEXT)
    assert notices == []
    assert parsed == {k: values[k] for k in parsed} and set(parsed) == set(values)


def test_the_default_settings_link_reads_back_without_a_notice():
    """The link every page writes when nothing was changed: each setting, λ per layer (empty: an equal
    share each) included, reads back as the default, with no warning on reload."""
    query = to_query(defaults())
    assert query["lambdas"] == ""
    context = {**CONTEXT, "style": [*CONTEXT["style"], defaults()["style"]]}
    parsed, notices = parse_query({k: [v] for k, v in query.items()}, context)
    assert notices == []
    assert parsed["style_weights"] == {}


@pytest.mark.parametrize("params, word", [
    ({"style_layers": ["conv1_1,conv1_1,conv2_1"]}, "repeated"),
    ({"steps": ["3", "5"]}, "2 times"),
    ({"content_layer": ["bogus"]}, "not one of"),
    ({"lr": ["nan"]}, "outside"),
    ({"size": ["100000"]}, "not one of"),
    ({"steps": ["1e9"]}, "cannot be read"),
    ({"beta": ["-1"]}, "outside"),
    ({"alpha": ["inf"]}, "outside"),
    ({"seed": ["１２"]}, "plain text"),
    ({"content": ["flow_brush/../../../etc/passwd"]}, "not one of"),
    ({"weights_source": ["file:/etc/passwd"]}, "not one of"),
    ({"lambdas": ["conv1_1:1,conv1_1:2"]}, "repeated"),
    ({"preserve_color": ["maybe"]}, "cannot be read"),
    ({"nonsense": ["1"]}, "not a setting"),
])
def test_hostile_values_are_refused_with_a_notice(params, word):
    values, notices = parse_query(params, CONTEXT)
    assert values == {} and len(notices) == 1 and word in notices[0], notices


def test_a_preset_and_the_a_b_choices_come_from_the_table():
    choices = ab_choices(["conv2_2", "conv4_2"])
    assert choices["content_layer"] == ("conv2_2", "conv4_2")
    assert set(choices) <= set(SETTINGS) and all(SETTINGS[k].field for k in choices)
    for name, preset in PRESETS.items():
        assert config_from({**defaults(), **preset}) == preset_config(name)


def test_cli_options_come_from_the_table():
    parser = argparse.ArgumentParser()
    add_cli_options(parser, DEFAULT_CONFIG)
    args = parser.parse_args(["--tv", "0.5", "--precision", "bf16", "--style-layers", "conv1_1,conv2_1",
                              "--preserve-color"])
    assert cli_values(args) == {"tv_weight": 0.5, "precision": "bf16", "style_layers": ("conv1_1", "conv2_1"),
                                "preserve_color": True}
    with pytest.raises(SystemExit):
        parser.parse_args(["--precision", "fp8"])


def test_a_link_naming_a_preset_runs_that_preset_unless_it_gives_a_setting_itself():
    for name, preset in PRESETS.items():
        values, notices = parse_query({"preset": [name]}, CONTEXT)
        assert notices == [] and values["preset"] == name
        assert config_from({**defaults(), **values}) == preset_config(name)
    values, _ = parse_query({"preset": ["Fine"], "steps": ["33"]}, CONTEXT)
    assert values["steps"] == 33 and values["levels"] == PRESETS["Fine"]["levels"]


def test_the_seed_matters_only_for_a_start_from_noise():
    from nst_core.settings import INITS, inactive_reason
    assert {init for init in INITS if inactive_reason("seed", {"init": init}) is None} == {"noise", "smooth"}
    assert "Start from" in inactive_reason("seed", {"init": "content"})
    assert inactive_reason("steps", {"init": "content"}) is None  # a setting without a condition always matters
