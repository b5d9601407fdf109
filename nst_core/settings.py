"""The one table of settings: every setting a student, a link or the command line can set.

Each row names its :class:`TransferConfig` field (or none, for a setting only the app has), its
widget, its choices or range, its URL key and its help text. The defaults come from
``TransferConfig`` and the default preset, so each is stated once, there. The app's defaults, URL
parsing, widgets, A/B choices and the CLI's options are all derived from ``SETTINGS``; adding a
setting means adding a row here (and a field to the engine).

Choices that depend on the server or the network ("layers", "sources", "content", "style") are
named here and supplied by the caller as ``context``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .costs import NORMALIZATIONS
from .model import ARCHS
from .transfer import (BALANCES, DEFAULT_PRESET, INITS, OPTIMIZERS, PRECISIONS, PRESETS, TransferConfig,
                       preset_config)

SIZES = (128, 192, 256, 384, 512)
# α and β under balanced weighting: a log scale a slider can offer.
WEIGHT_SCALE = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0)
MAX_TEXT = 200  # a URL value longer than this is refused before it is parsed
DEFAULT_CONFIG = preset_config(DEFAULT_PRESET)


@dataclass(frozen=True)
class Setting:
    """One row of the table."""

    key: str  # the app's state key (the config field's name where there is one)
    label: str
    help: str
    widget: str  # select | radio | multiselect | number | slider | select_slider | checkbox | toggle | weight | lambdas
    field: str | None = None  # the TransferConfig field it sets; None for an app-only setting
    url: str | None = None  # its key in a shared link (None: not carried)
    choices: tuple | str = ()  # fixed choices, or the name of a list the caller supplies
    low: float | None = None
    high: float | None = None
    step: float | None = None
    app_default: object = None  # only for app-only settings; engine ones take TransferConfig's
    labels: tuple[tuple[str, str], ...] = ()  # how a choice is shown, where its name is not enough
    ab: tuple = ()  # values offered when an A/B comparison varies this setting
    cli: bool = True  # offered as --option by the command line
    sidebar: bool = False  # shared by every page (sidebar) rather than a Stylize setting
    # (setting, values): the setting changes a run only while that other setting has one of these
    # values; elsewhere its widget is disabled, so nobody is offered a knob that does nothing.
    applies: tuple[str, tuple] | None = None

    @property
    def default(self):
        if self.field is None:
            return self.app_default
        value = getattr(DEFAULT_CONFIG, self.field)
        if self.widget == "lambdas":
            return {}  # the engine's None: every layer an equal share
        return list(value) if isinstance(value, tuple) else value

    @property
    def kind(self) -> type:
        """The Python type of the value: bool, int, float, str, list (of str) or dict (layer → λ)."""
        if self.widget == "lambdas":
            return dict
        if self.widget == "multiselect":
            return list
        d = self.default
        return type(d) if d is not None else str

    def choice_list(self, context: dict | None = None) -> tuple:
        if isinstance(self.choices, str):
            return tuple((context or {}).get(self.choices, ()))
        return self.choices

    def label_of(self, value) -> str:
        return dict(self.labels).get(value, str(value))

    def check(self, value, context: dict | None = None):
        """``value`` if it is allowed here; otherwise ValueError with a sentence saying why."""
        choices = self.choice_list(context)
        if self.kind is list:
            if len(set(value)) != len(value):
                raise ValueError(f"{self.label}: a name is repeated")
            bad = [v for v in value if v not in choices]
            if bad or not value:
                raise ValueError(f"{self.label}: {bad[0] if bad else 'nothing'} is not one of the choices")
            return value
        if self.kind is dict:
            for name, lam in value.items():
                if name not in choices or not (math.isfinite(lam) and 0 <= lam <= self.high):
                    raise ValueError(f"{self.label}: {name}:{lam} is not allowed")
            return value
        if choices and self.kind is not bool and value not in choices:
            raise ValueError(f"{self.label}: {value!r} is not one of the choices")
        if self.kind in (int, float):
            if not math.isfinite(value) or not (self.low <= value <= self.high):
                raise ValueError(f"{self.label}: {value} is outside {self.low:g}…{self.high:g}")
        return value

    def parse(self, text: str, context: dict | None = None):
        """A link's text as a checked value; ValueError for anything else (never another error)."""
        if not isinstance(text, str) or len(text) > MAX_TEXT or not text.isascii() or not text.isprintable():
            raise ValueError(f"{self.label}: the value is not plain text of reasonable length")
        kind = self.kind
        try:
            if kind is bool:
                if text.lower() not in ("true", "false", "1", "0"):
                    raise ValueError(text)
                value = text.lower() in ("true", "1")
            elif kind is int:
                value = int(text)
            elif kind is float:
                value = float(text)
            elif kind is list:
                value = text.split(",")
            elif kind is dict:  # empty: no layer given its own λ (what the default writes)
                pairs = [item.split(":") for item in text.split(",")] if text else []
                value = {name: float(lam) for name, lam in pairs}
            else:
                value = text
        except ValueError as exc:
            raise ValueError(f"{self.label}: '{text}' cannot be read") from exc
        if kind is dict and len(value) != len(pairs):
            raise ValueError(f"{self.label}: a layer is repeated")
        return self.check(value, context)

    def to_text(self, value) -> str:
        if self.kind is list:
            return ",".join(value)
        if self.kind is dict:
            return ",".join(f"{name}:{lam:g}" for name, lam in value.items())
        if self.kind is float:
            return f"{value:g}"
        return str(value).lower() if self.kind is bool else str(value)


_NORMALIZATION_LABELS = (("seed", "Course / Gatys: ½·Σ and 1/(2·n_H·n_W·n_C)²"),
                         ("mse", "Mean squared (PyTorch tutorial)"))

TABLE: tuple[Setting, ...] = (
    # ------------------------------------------------ shared by every page (sidebar)
    Setting("weights_source", "Weights", "Trained weights give real style transfer; random ones show what "
            "training adds.", "select", url="weights_source", choices="sources", cli=False, sidebar=True),
    Setting("arch", "Architecture", "VGG19 is the paper's network; VGG16 lacks conv3_4, conv4_4 and conv5_4.",
            "select", url="arch", choices=ARCHS, app_default="vgg19", cli=False, sidebar=True),
    Setting("precision", "Arithmetic", "The network's number format. bf16 roughly halves a step's time on CPUs "
            "that support it; the image, Grams and costs stay in fp32. auto picks what the server does best.",
            "select", field="precision", url="precision", choices=PRECISIONS, sidebar=True),
    Setting("size", "Image size (long side, px)", "Bigger looks finer but each step costs about (size/256)² "
            "times more.", "select_slider", field="size", url="size", choices=SIZES, low=16, high=2048,
            sidebar=True),
    Setting("seed", "Seed", "Fixes the starting noise, so the same settings give the same image.", "number",
            field="seed", url="seed", low=0, high=10**6, sidebar=True, applies=("init", ("noise", "smooth"))),
    # ------------------------------------------------ how the app is shown (no effect on a run)
    Setting("present", "Presentation mode", "For a projector: hides the settings and the sidebar and shows the "
            "pictures large. Switch it off to change settings again.", "toggle", url="present", app_default=False,
            cli=False),
    # ------------------------------------------------ images (bundled ones by name only)
    Setting("content", "Content image", "A bundled photo, or upload your own.", "select", url="content",
            choices="content", app_default="chelsea_cat", cli=False),
    Setting("style", "Style image", "A bundled style, or upload your own.", "select", url="style",
            choices="style", app_default="starry_night", cli=False),
    Setting("use_second_style", "Blend in a second style", "Each layer's target Gram becomes a weighted mix of "
            "both styles' Grams.", "checkbox", url="second", app_default=False, cli=False),
    Setting("style2", "Second style image", "The style mixed into the first.", "select", url="style2",
            choices="style", app_default="stained_glass", cli=False),
    Setting("blend", "Weight of the second style", "0 uses only the first style, 1 only the second.", "slider",
            url="blend", low=0.0, high=1.0, step=0.05, app_default=0.5, cli=False),
    # ------------------------------------------------ Stylize settings
    Setting("preset", "Preset", "Quick: the fewest steps that look finished, half size first. Paper: L-BFGS "
            "from noise with average pooling, as Gatys et al. did. Fine: more steps for a cleaner result.",
            "radio", url="preset",
            choices=tuple(PRESETS), app_default=DEFAULT_PRESET, cli=False),
    Setting("content_layer", "Content layer", "Shallow layers pin G to the photo's exact pixels; deep layers keep "
            "only its layout.", "select", field="content_layer", url="content_layer", choices="layers",
            ab=("conv2_2", "conv3_2", "conv4_2", "conv5_2")),
    Setting("style_layers", "Style layers", "Gram matrices of these layers define the style. Shallow ones carry "
            "colour and fine texture, deep ones larger motifs.", "multiselect", field="style_layers",
            url="style_layers", choices="layers"),
    Setting("style_weights", "λ per style layer", "Raise a layer's λ to make its Gram matter more; by default "
            "each layer gets an equal share.", "lambdas", field="style_weights", url="lambdas", choices="layers",
            low=0.0, high=10.0, step=0.05, cli=False),
    Setting("balance", "Weighting", "Balanced divides α by J_content(C, 0) and each λ by J_style[l](S, 0), so the "
            "same α and β work on any network and size. Raw uses them exactly as typed.", "radio",
            field="balance", url="balance", choices=BALANCES,
            labels=(("auto", "Balanced (auto)"), ("raw", "Raw (as the formula reads)"))),
    Setting("alpha", "α (content weight)", "More α: G stays closer to the photo. Raw costs grow with activation "
            "scale: J_content like s².", "weight", field="alpha", url="alpha", low=0.0, high=1e12),
    Setting("beta", "β (style weight)", "More β: stronger texture, less of the photo. Raw J_style grows like s⁴: "
            "try β 10⁶ or more above α.", "weight", field="beta", url="beta", low=0.0, high=1e12,
            ab=(0.5, 2.0, 5.0, 20.0, 100.0)),
    Setting("optimizer", "Optimizer", "Adam takes steady steps of size lr in pixel space; L-BFGS takes bigger, "
            "curvature-aware steps.", "select", field="optimizer", url="optimizer", choices=OPTIMIZERS,
            ab=OPTIMIZERS),
    Setting("steps", "Steps", "More steps: closer to the minimum, longer wait.", "number", field="steps",
            url="steps", low=1, high=1000),
    Setting("lr", "Learning rate", "Adam: how far each pixel may move per step (0.02 ≈ 5 grey levels). "
            "L-BFGS: use 1.", "number", field="lr", url="lr", low=0.001, high=10.0),
    Setting("init", "Start from", "Starting from the photo converges much sooner than from noise.", "select",
            field="init", url="init", choices=INITS, ab=INITS),
    Setting("levels", "Coarse-to-fine levels", "2 or 3 runs most steps at half or quarter size first: much "
            "faster.", "number", field="levels", url="levels", low=1, high=3, ab=(1, 2, 3)),
    Setting("tv_weight", "TV weight", "Total variation smooths G; 0 turns it off.", "number", field="tv_weight",
            url="tv", low=0.0, high=100.0),
    Setting("style_scale", "Style scale", "The style image's size relative to G before its Grams are taken: "
            "below 1 its strokes and motifs come out smaller in G, above 1 larger.", "slider",
            field="style_scale", url="style_scale", low=0.5, high=1.5, step=0.25, ab=(0.5, 1.0, 1.5)),
    Setting("pooling", "Pooling", "The paper swapped max for average pooling.", "select", field="pooling",
            url="pooling", choices=("max", "avg"), ab=("max", "avg")),
    Setting("preserve_color", "Keep the photo's colours", "Takes the luminance from G and the colours from the "
            "content image.", "checkbox", field="preserve_color", url="preserve_color"),
    Setting("normalization", "Normalization", "Only constant factors differ; with balanced weighting the result "
            "is nearly the same.", "radio", field="normalization", url="normalization", choices=NORMALIZATIONS,
            labels=_NORMALIZATION_LABELS, ab=NORMALIZATIONS),
)
SETTINGS: dict[str, Setting] = {s.key: s for s in TABLE}
BY_URL: dict[str, Setting] = {s.url: s for s in TABLE if s.url}
# What a preset sets: its keys are settings of the table (checked by a test).
PRESET_KEYS = tuple(sorted({k for p in PRESETS.values() for k in p}))


def inactive_reason(key: str, values: dict) -> str | None:
    """Why the setting ``key`` changes nothing with these ``values`` (None when it matters)."""
    s = SETTINGS[key]
    if s.applies is None:
        return None
    other, allowed = s.applies
    if values.get(other) in allowed:
        return None
    names = " or ".join(SETTINGS[other].label_of(v) for v in allowed)
    return f"Used only when “{SETTINGS[other].label}” is {names}: a run from {values.get(other)} has no noise to fix."


def defaults() -> dict:
    """Every setting's default value (fresh copies, so a caller may change them)."""
    out = {}
    for s in TABLE:
        d = s.default
        out[s.key] = list(d) if isinstance(d, list) else dict(d) if isinstance(d, dict) else d
    return out


def parse_query(params: dict[str, list[str]], context: dict) -> tuple[dict, list[str]]:
    """A link's parameters (each key with every value it was given) as settings, and a notice for
    each one refused: unknown keys, repeated keys, and values that are unreadable or out of range."""
    values, notices = {}, []
    for key, given in params.items():
        setting = BY_URL.get(key)
        shown = key if key.isascii() and key.isprintable() and len(key) < 40 else "a parameter"
        if setting is None:
            notices.append(f"{shown} is not a setting of this app")
        elif len(given) != 1:
            notices.append(f"{setting.label} was given {len(given)} times")
        else:
            try:
                values[setting.key] = setting.parse(given[0], context)
            except ValueError as exc:
                notices.append(str(exc))
    if "preset" in values:  # a link naming a preset runs it; settings the link also gives win
        values = {**PRESETS[values["preset"]], **values}
    if "style_weights" in values and "style_layers" in values:
        values["style_weights"] = {n: lam for n, lam in values["style_weights"].items()
                                   if n in values["style_layers"]}
    return values, notices


def to_query(values: dict) -> dict[str, str]:
    """The settings a link carries, as text."""
    return {s.url: s.to_text(values[s.key]) for s in TABLE if s.url and values.get(s.key) is not None}


def config_from(values: dict, two_styles: bool = False) -> TransferConfig:
    """The run configuration the settings describe (ValueError for an impossible one)."""
    kwargs = {s.field: values[s.key] for s in TABLE if s.field and s.key in values}
    layers = tuple(kwargs.get("style_layers", ()))
    kwargs["style_layers"] = layers
    lambdas = kwargs.pop("style_weights", None) or {}
    kwargs["style_weights"] = (tuple(float(lambdas.get(n, 1.0 / len(layers))) for n in layers)
                               if lambdas and layers else None)
    blend = values.get("blend", 0.5)
    kwargs["style_blend"] = (1 - blend, blend) if two_styles else None
    return TransferConfig(**kwargs)


def ab_choices(layers=()) -> dict[str, tuple]:
    """The settings an A/B comparison may vary, with the values it offers for each."""
    out = {}
    for s in TABLE:
        if s.ab:
            out[s.key] = tuple(v for v in s.ab if s.choices != "layers" or v in layers)
    return out


def _cli_type(s: Setting):
    kind = s.kind
    if kind is list:
        return lambda text: tuple(x.strip() for x in text.split(",") if x.strip())
    return {bool: None, int: int, float: float}.get(kind, str)


def add_cli_options(parser, base: TransferConfig, skip=(), preset_note: str | None = None) -> None:
    """One --option per table row the command line offers (the URL key with dashes: --tv, say).
    Every option defaults to None, meaning "not given": the caller's ``base`` configuration (or
    preset, for the settings a preset sets, when ``preset_note`` names it) decides, and the help
    shows what that is."""
    for s in TABLE:
        if not s.cli or s.key in skip:
            continue
        flag = "--" + (s.url or s.key).replace("_", "-")
        value = getattr(base, s.field)
        shown = preset_note if preset_note and s.key in PRESET_KEYS else s.to_text(value)
        if s.kind is bool:
            parser.add_argument(flag, dest=s.key, action="store_true", default=None, help=s.help)
            continue
        choices = s.choice_list() if s.kind is str else ()
        parser.add_argument(flag, dest=s.key, type=_cli_type(s), default=None, choices=choices or None,
                            help=f"{s.help} (default: {shown})")


def cli_values(args) -> dict:
    """The table's settings given on the command line (options left at None are not given)."""
    return {s.key: getattr(args, s.key) for s in TABLE
            if s.cli and getattr(args, s.key, None) is not None}
