"""VGG feature extractor: weight sources, the layer table, and `extract`.

Layer names follow the Gatys et al. paper and Caffe: ``conv{b}_{i}``, ``relu{b}_{i}``,
``pool{b}``. Caffe ran every ReLU in place, so the blob the paper calls ``conv4_2`` held the
*rectified* output. We keep that meaning: ``extract(x, ["conv4_2"])`` returns the same tensor as
``relu4_2``, and ``LayerInfo.output_index`` points at the ReLU.
"""

from __future__ import annotations

import functools

import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision
from torch import nn

_TV_CFG = {"vgg16": "D", "vgg19": "E"}  # torchvision's names for these configurations
# Channel plan of each network ("M" is a pool), torchvision's own, so the layer table always names
# the modules that torchvision builds.
VGG_PLANS: dict[str, list[int | str]] = {arch: torchvision.models.vgg.cfgs[cfg] for arch, cfg in _TV_CFG.items()}
ARCHS = tuple(VGG_PLANS)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# A bf16 pass over an fp32 one on a CPU with no bfloat16 instructions, where it is emulated: the
# low end of what was measured (docs/benchmarks.md, "bfloat16 without bf16 instructions").
EMULATED_BF16_FACTOR = 60
WEIGHTS_ENV = "NST_WEIGHTS"


class ModelError(RuntimeError):
    """The network could not be built or loaded; the message is meant for a person."""


class WeightsUnavailable(ModelError):
    """The ImageNet weights could not be downloaded."""


@dataclass(frozen=True)
class LayerInfo:
    """One named layer of a VGG ``features`` stack.

    ``index`` is the module's position in torchvision's ``features``; ``output_index`` is the
    module whose output ``extract`` returns under this name (the ReLU, for ``conv`` names).
    ``stride`` is the layer's step in input pixels; ``receptive_field`` its window in pixels.
    """

    name: str
    kind: str  # "conv", "relu" or "pool"
    block: int
    index: int
    output_index: int
    channels: int
    stride: int
    receptive_field: int


def layer_table(arch: str = "vgg19") -> dict[str, LayerInfo]:
    """All named layers of ``arch`` in network order, with index, channels, stride and field.

    The receptive field grows by (k − 1)·stride at each k×k layer: 3×3 convolutions add
    2·stride, 2×2 pools add 1·stride and then double the stride.
    """
    if arch not in VGG_PLANS:
        raise ModelError(f"Unknown network '{arch}'. Choose one of: {', '.join(ARCHS)}.")
    table: dict[str, LayerInfo] = {}
    index, block, conv_in_block, channels, stride, field = 0, 1, 0, 3, 1, 1
    for item in VGG_PLANS[arch]:
        if item == "M":
            field += stride
            stride *= 2
            name = f"pool{block}"
            table[name] = LayerInfo(name, "pool", block, index, index, channels, stride, field)
            index += 1
            block += 1
            conv_in_block = 0
            continue
        conv_in_block += 1
        channels = int(item)
        field += 2 * stride
        tag = f"{block}_{conv_in_block}"
        table[f"conv{tag}"] = LayerInfo(f"conv{tag}", "conv", block, index, index + 1,
                                        channels, stride, field)
        table[f"relu{tag}"] = LayerInfo(f"relu{tag}", "relu", block, index + 1, index + 1,
                                        channels, stride, field)
        index += 2
    return table


def resolve_layers(arch: str, names) -> list[LayerInfo]:
    """Look up layer names, raising one readable error that lists the valid names."""
    table = layer_table(arch)
    unknown = [n for n in names if n not in table]
    if unknown:
        valid = ", ".join(n for n in table if not n.startswith("relu"))
        raise ModelError(f"Unknown layer {', '.join(map(repr, unknown))} for {arch}. "
                         f"Valid names: {valid} (relu names work too).")
    return [table[n] for n in names]


class VGGFeatures(nn.Module):
    """A frozen VGG ``features`` stack that returns named activations.

    Shared read-only between threads and sessions: it is in eval mode, its parameters need no
    gradient, and no module works in place, so no activation a caller reads is overwritten.
    """

    def __init__(self, features: nn.Sequential, arch: str, source: str, description: str):
        super().__init__()
        for i, m in enumerate(features):
            if isinstance(m, nn.ReLU):
                features[i] = nn.ReLU(inplace=False)
        self.features = features
        self.arch = arch
        self.source = source
        self.description = description
        self.table = layer_table(arch)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        self.eval()
        self.requires_grad_(False)

    @property
    def trained(self) -> bool:
        return self.source != "random"

    def train(self, mode: bool = True):  # noqa: D401 - a shared model never leaves eval mode
        return super().train(False)

    def extract(self, image: torch.Tensor, layers, pooling: str = "max",
                precision: str = "fp32") -> dict[str, torch.Tensor]:
        """Activations of ``layers`` for an RGB image in [0, 1] shaped (B, 3, H, W).

        Applies ImageNet normalization, runs only as deep as the deepest layer asked for, and
        with ``pooling="avg"`` swaps every max pool for a 2×2 average pool, as Gatys et al. did.
        With ``precision`` "bf16" (or "auto" where :meth:`auto_precision` chose it) the
        convolutions run in bfloat16 under autocast; the activations come back as float32, so
        Gram matrices and costs are always summed in float32.
        """
        if pooling not in ("max", "avg"):
            raise ModelError(f"Unknown pooling '{pooling}': use 'max' or 'avg'.")
        dtype = self.compute_dtype(precision)
        infos = resolve_layers(self.arch, layers)
        wanted: dict[int, list[str]] = {}
        for info in infos:
            wanted.setdefault(info.output_index, []).append(info.name)
        last = max(wanted)
        x = (image - self.mean) / self.std
        out: dict[str, torch.Tensor] = {}
        with torch.autocast(x.device.type, dtype=dtype, enabled=dtype != torch.float32):
            for i, module in enumerate(self.features[: last + 1]):
                if pooling == "avg" and isinstance(module, nn.MaxPool2d):
                    x = F.avg_pool2d(x, kernel_size=2, stride=2)
                else:
                    x = module(x)
                for name in wanted.get(i, ()):
                    out[name] = x
        return {name: out[name].float() for name in layers}

    def compute_precision(self, precision: str = "auto") -> str:
        """"fp32" or "bf16": what a precision setting means on this model and machine."""
        if precision not in ("auto", "fp32", "bf16"):
            raise ModelError(f"Unknown precision '{precision}': use auto, fp32 or bf16.")
        return self.auto_precision() if precision == "auto" else precision

    def compute_dtype(self, precision: str = "fp32") -> torch.dtype:
        """The dtype the convolutions run in for a precision setting ("auto", "fp32" or "bf16")."""
        precision = self.compute_precision(precision)
        if precision == "fp32":
            return torch.float32
        return _low_precision_dtype(self.mean.device)

    def auto_precision(self) -> str:
        """bf16 where this machine has fast bf16 arithmetic, else fp32.

        Under CUDA, autocast's bf16 (or fp16 on GPUs without bf16) is always the faster choice. On
        a CPU, bf16 is fast only with AVX512-BF16 or AMX (elsewhere it is emulated and slower), and
        the CPU's flags alone decide: the choice is part of the network's identity, so every
        process on one machine must reach the same one, which a timing on a busy host does not.
        """
        return "bf16" if self.bf16_is_native() else "fp32"

    def bf16_is_native(self) -> bool:
        """Whether this model's device has bfloat16 arithmetic of its own (any CUDA GPU autocast
        runs on; a CPU with AVX512-BF16 or AMX); elsewhere bf16 is emulated, far slower than fp32."""
        return self.mean.device.type == "cuda" or cpu_has_fast_bf16()

    def emulates(self, precision: str) -> bool:
        """Whether ``precision`` means bfloat16 that this device only emulates."""
        return self.compute_precision(precision) == "bf16" and not self.bf16_is_native()

    def precision_label(self, precision: str = "auto") -> str:
        """Words for the app and the CLI, e.g. "bfloat16 (chosen automatically: faster on this CPU)"."""
        dtype = self.compute_dtype(precision)
        name = {torch.float32: "float32", torch.bfloat16: "bfloat16", torch.float16: "float16"}[dtype]
        if precision != "auto":
            if self.emulates(precision):
                return f"{name} (set by hand; emulated on this CPU, at least {EMULATED_BF16_FACTOR:g}× float32's time)"
            return f"{name} (set by hand)"
        why = "faster on this machine" if dtype != torch.float32 else "bfloat16 is not faster here"
        return f"{name} (chosen automatically: {why})"


@functools.lru_cache(maxsize=4)
def cpu_has_fast_bf16(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Whether the CPU has native bfloat16 arithmetic (AVX512-BF16 or AMX-BF16)."""
    try:
        flags = next((line.split(":", 1)[1].split() for line in Path(cpuinfo).read_text().splitlines()
                      if line.startswith("flags")), [])
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def _low_precision_dtype(device: torch.device) -> torch.dtype:
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return torch.float16
    return torch.bfloat16


def alternated_pass_times(model: "VGGFeatures", shape: tuple[int, int], layers=("conv5_1",),
                          repeats: int = 3, precisions=("fp32", "bf16")) -> dict[str, list[float]]:
    """Seconds of forward+backward passes (input gradient only) through ``layers`` in each of
    ``precisions``, the precisions alternated so a busy neighbour slows all alike; a first, warm-up
    round is not counted."""
    x = torch.rand(1, 3, *shape, device=model.mean.device, requires_grad=True)
    times: dict[str, list[float]] = {precision: [] for precision in precisions}
    with torch.enable_grad():  # the first caller may be inside no_grad (computing targets)
        for _ in range(repeats + 1):
            for precision, seconds in times.items():
                t = time.perf_counter()
                sum(a.sum() for a in model.extract(x, layers, precision=precision).values()).backward()
                seconds.append(time.perf_counter() - t)
                x.grad = None
    return {precision: seconds[1:] for precision, seconds in times.items()}


def _features_module(arch: str, init: bool = False) -> nn.Sequential:
    """torchvision's VGG ``features`` stack alone: building the whole model would first allocate
    its 400+ MB classifier only to throw it away. ``init`` applies torchvision's own VGG
    initialization (He-normal, fan-out; zero biases) for random weights."""
    features = torchvision.models.vgg.make_layers(torchvision.models.vgg.cfgs[_TV_CFG[arch]], batch_norm=False)
    if init:
        for m in features:
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.constant_(m.bias, 0)
    return features


def _imagenet_features(arch: str) -> nn.Sequential:
    """torchvision's ImageNet weights, downloaded once into TORCH_HOME's hub cache.

    Only the ``features`` tensors are kept; the file is memory-mapped where torch allows it, so
    the 400+ MB classifier is never held in memory.
    """
    enum = getattr(torchvision.models, f"{arch.upper()}_Weights").IMAGENET1K_V1
    cache = Path(torch.hub.get_dir()) / "checkpoints"
    path = cache / os.path.basename(enum.url)
    try:
        if not path.exists():
            cache.mkdir(parents=True, exist_ok=True)
            torch.hub.download_url_to_file(enum.url, str(path), progress=False)
    except Exception as exc:  # any network or disk failure means the same thing to the user
        raise WeightsUnavailable(
            f"Could not download torchvision's ImageNet {arch.upper()} weights ({type(exc).__name__}: "
            f"{exc}). Use a local weights file instead (a torchvision-format VGG features state dict: "
            f"--weights PATH or the {WEIGHTS_ENV} environment variable), or random untrained weights "
            "(--weights random)."
        ) from exc
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError:
        state = torch.load(path, map_location="cpu", weights_only=True)
    features = _features_module(arch)
    features.load_state_dict(_features_only(state))
    return features


def _features_only(state: dict) -> dict[str, torch.Tensor]:
    """Accept a ``features`` state dict or a whole VGG one; keep float32 ``features`` tensors."""
    if any(k.startswith("features.") for k in state):
        state = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")}
    return {k: v.float() for k, v in state.items()}


def detect_arch(state: dict) -> str:
    """VGG16 and VGG19 differ only in depth: count the convolution weights."""
    n_conv = sum(1 for k, v in _features_only(state).items() if k.endswith("weight") and v.dim() == 4)
    for arch, plan in VGG_PLANS.items():
        if n_conv == sum(1 for x in plan if x != "M"):
            return arch
    raise ModelError(f"The weights file holds {n_conv} convolutions, which is neither VGG16 (13) "
                     "nor VGG19 (16).")


def _file_features(path: str, arch: str | None) -> tuple[nn.Sequential, str]:
    p = Path(path).expanduser()
    if not p.is_file():
        raise ModelError(f"Weights file not found: {p}. Give a torchvision-format VGG features "
                         "state dict, or use --weights random.")
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelError(f"Could not read weights file {p.name}: it is not a PyTorch state dict "
                         f"that loads with weights_only=True ({type(exc).__name__}).") from exc
    if not isinstance(state, dict):
        raise ModelError(f"Weights file {p.name} does not hold a state dict.")
    found = detect_arch(state)
    if arch is not None and arch != found:
        raise ModelError(f"Weights file {p.name} holds {found.upper()} features, not {arch.upper()}: "
                         f"choose {found}.")
    features = _features_module(found)
    try:
        features.load_state_dict(_features_only(state))
    except RuntimeError as exc:
        raise ModelError(f"Weights file {p.name} does not match torchvision's {found} "
                         f"features: {str(exc).splitlines()[0]}") from exc
    return features, found


def load_vgg(arch: str | None = "vgg19", weights: str = "imagenet", seed: int = 0,
             device: str | torch.device = "cpu") -> VGGFeatures:
    """Build a frozen VGG feature extractor.

    ``weights`` is ``"imagenet"`` (torchvision's API, cached under TORCH_HOME), ``"random"``
    (seeded, untrained), or a path to a local torchvision-format ``features`` state dict
    (loaded with ``weights_only=True``; its depth decides the architecture when ``arch`` is None).
    Raises :class:`WeightsUnavailable` when the download fails and :class:`ModelError` otherwise.
    """
    if weights == "imagenet":
        arch = arch or "vgg19"
        layer_table(arch)
        features = _imagenet_features(arch)
        model = VGGFeatures(features, arch, "imagenet", f"{arch.upper()}, torchvision ImageNet weights")
    elif weights == "random":
        arch = arch or "vgg19"
        layer_table(arch)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            features = _features_module(arch, init=True)
        model = VGGFeatures(features, arch, "random",
                            f"{arch.upper()}, random untrained weights (seed {seed})")
    else:
        features, arch = _file_features(weights, arch)
        model = VGGFeatures(features, arch, "file", f"{arch.upper()}, weights from {Path(weights).name}")
    return model.to(device)


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` picks CUDA when it is present and never requires it."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ModelError("CUDA was asked for but no GPU is available: use --device cpu or auto.")
    return torch.device(device)


def cpu_quota(cgroup_root: str = "/sys/fs/cgroup") -> float | None:
    """CPUs this container may use under its cgroup limit (v2 ``cpu.max`` or v1 CFS quota), or None
    when unlimited. Hosted containers often see all of the host's cores but are allowed only a
    couple; torch sizes its thread pool from the cores it sees."""
    root = Path(cgroup_root)
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        return None if quota <= 0 or period <= 0 else quota / period
    except (OSError, ValueError):
        return None


def configure_threads(cgroup_root: str = "/sys/fs/cgroup") -> int:
    """Use no more compute threads than the CPUs this process may run on; more only thrash."""
    allowed = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    quota = cpu_quota(cgroup_root)
    if quota is not None:
        allowed = min(allowed, max(1, int(quota + 0.5)))
    if torch.get_num_threads() > allowed:
        torch.set_num_threads(allowed)
    return torch.get_num_threads()


def step_gflop(arch: str, layers, size: tuple[int, int]) -> float:
    """Approximate GFLOP of one forward+backward (input gradient only) up to the deepest layer.

    Counts 2 FLOP per multiply-add in each 3×3 convolution and doubles it for the backward pass;
    used only to estimate run times before a run starts.
    """
    infos = resolve_layers(arch, layers)
    last = max(i.output_index for i in infos)
    h, w = size
    flop, c_in = 0.0, 3
    for info in layer_table(arch).values():
        if info.index > last:
            break
        if info.kind == "conv":
            flop += 2 * 9 * c_in * info.channels * (h // info.stride) * (w // info.stride)
            c_in = info.channels
    return 2 * flop / 1e9
