"""The layer table and feature extractor, checked against torchvision itself."""

import urllib.error

import pytest
import torch
import torchvision
from torch import nn

from nst_core import ModelError, WeightsUnavailable, layer_table, load_vgg
from nst_core.model import detect_arch, step_gflop

# Receptive fields of VGG19 in pixels, as listed in DESIGN.md.
VGG19_FIELDS = {"conv1_1": 3, "conv2_1": 10, "conv3_1": 24, "conv4_1": 68, "conv4_2": 84, "conv5_1": 156}


def test_vgg19_receptive_fields_and_strides():
    table = layer_table("vgg19")
    for name, field in VGG19_FIELDS.items():
        assert table[name].receptive_field == field, name
    assert [table[f"conv{b}_1"].stride for b in range(1, 6)] == [1, 2, 4, 8, 16]
    assert table["pool5"].stride == 32


@pytest.mark.parametrize("arch", ["vgg16", "vgg19"])
def test_layer_table_matches_torchvision_modules(arch):
    features = getattr(torchvision.models, arch)(weights=None).features
    table = layer_table(arch)
    assert max(info.index for info in table.values()) == len(features) - 1
    kinds = {"conv": nn.Conv2d, "relu": nn.ReLU, "pool": nn.MaxPool2d}
    for info in table.values():
        module = features[info.index]
        assert isinstance(module, kinds[info.kind]), info.name
        if info.kind == "conv":
            assert module.out_channels == info.channels
            assert isinstance(features[info.output_index], nn.ReLU)  # the paper's conv = rectified
    n_conv = sum(isinstance(m, nn.Conv2d) for m in features)
    assert n_conv == sum(info.kind == "conv" for info in table.values()) == {"vgg16": 13, "vgg19": 16}[arch]
    if arch == "vgg16":
        assert "conv3_4" not in table and "conv5_4" not in table


@pytest.mark.parametrize("arch", ["vgg16", "vgg19"])
def test_extract_equals_torchvision_slices(arch):
    model = load_vgg(arch, "random", seed=3)
    reference = getattr(torchvision.models, arch)(weights=None).features
    reference.load_state_dict(model.features.state_dict())
    reference.eval()
    x = torch.rand(1, 3, 40, 36)
    normalized = (x - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / torch.tensor(
        [0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    names = ["conv1_1", "conv2_2", "relu3_1", "conv4_2", "pool4", "conv5_1"]
    got = model.extract(x, names)
    table = layer_table(arch)
    with torch.no_grad():
        for name in names:
            want = reference[: table[name].output_index + 1](normalized.clone())
            assert torch.allclose(got[name], want, atol=1e-5), name
    assert torch.equal(model.extract(x, ["conv4_2"])["conv4_2"], model.extract(x, ["relu4_2"])["relu4_2"])
    assert (got["conv4_2"] >= 0).all()  # rectified, as in the paper


def test_extract_stops_at_the_deepest_layer_asked_for(vgg19_random):
    calls = []
    hooks = [m.register_forward_hook(lambda mod, i, o, k=k: calls.append(k))
             for k, m in enumerate(vgg19_random.features)]
    try:
        vgg19_random.extract(torch.rand(1, 3, 32, 32), ["conv2_1"])
    finally:
        for h in hooks:
            h.remove()
    assert max(calls) == layer_table("vgg19")["conv2_1"].output_index


def test_model_is_frozen_and_shares_safely(vgg19_random):
    assert not vgg19_random.training
    vgg19_random.train()
    assert not vgg19_random.training
    assert all(not p.requires_grad for p in vgg19_random.parameters())
    assert not any(getattr(m, "inplace", False) for m in vgg19_random.features)


def test_average_pooling_switch(vgg19_random):
    x = torch.rand(1, 3, 32, 32)
    a_max = vgg19_random.extract(x, ["conv2_1"], pooling="max")["conv2_1"]
    a_avg = vgg19_random.extract(x, ["conv2_1"], pooling="avg")["conv2_1"]
    assert a_max.shape == a_avg.shape and not torch.allclose(a_max, a_avg)
    relu12 = vgg19_random.extract(x, ["relu1_2"])["relu1_2"]
    manual = vgg19_random.features[5:7](nn.functional.avg_pool2d(relu12, 2))
    assert torch.allclose(a_avg, manual, atol=1e-6)
    with pytest.raises(ModelError, match="pooling"):
        vgg19_random.extract(x, ["conv1_1"], pooling="median")


def test_unknown_layer_is_a_readable_error(vgg16_random):
    with pytest.raises(ModelError, match="conv5_4.*Valid names"):
        vgg16_random.extract(torch.rand(1, 3, 32, 32), ["conv5_4"])


def test_random_weights_are_seeded():
    a, b = load_vgg("vgg16", "random", seed=7), load_vgg("vgg16", "random", seed=7)
    c = load_vgg("vgg16", "random", seed=8)
    assert torch.equal(a.features[0].weight, b.features[0].weight)
    assert not torch.equal(a.features[0].weight, c.features[0].weight)
    assert "random" in a.description and not a.trained


def test_local_file_weights(tmp_path, vgg16_random):
    state = {f"features.{k}": v.half() for k, v in vgg16_random.features.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(2, 2)  # a whole-model state dict is accepted too
    path = tmp_path / "vgg.pth"
    torch.save(state, path)
    model = load_vgg(None, str(path))
    assert model.arch == "vgg16" and model.source == "file"
    assert torch.allclose(model.features[0].weight, vgg16_random.features[0].weight, atol=1e-2)
    with pytest.raises(ModelError, match="VGG16.*not VGG19"):
        load_vgg("vgg19", str(path))
    assert detect_arch(state) == "vgg16"


def test_bad_weight_files(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        load_vgg(None, str(tmp_path / "missing.pth"))
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match="weights_only"):
        load_vgg(None, str(junk))
    wrong = tmp_path / "wrong.pth"
    torch.save({"0.weight": torch.zeros(4, 3, 3, 3)}, wrong)
    with pytest.raises(ModelError, match="neither VGG16"):
        load_vgg(None, str(wrong))


def test_failed_download_names_the_other_sources(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(WeightsUnavailable) as info:
        load_vgg("vgg19", "imagenet")
    message = str(info.value)
    assert "random" in message and "NST_WEIGHTS" in message and "VGG19" in message


def test_imagenet_weights_load_from_the_cache(tmp_path, monkeypatch, vgg19_random):
    """A file already in TORCH_HOME's hub cache is used without any download."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    url = torchvision.models.VGG19_Weights.IMAGENET1K_V1.url
    cache = tmp_path / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    torch.save({f"features.{k}": v for k, v in vgg19_random.features.state_dict().items()},
               cache / url.rsplit("/", 1)[-1])
    monkeypatch.setattr(torch.hub, "download_url_to_file", lambda *a, **k: pytest.fail("downloaded"))
    model = load_vgg("vgg19", "imagenet")
    assert model.source == "imagenet" and "ImageNet" in model.description
    assert torch.equal(model.features[0].weight, vgg19_random.features[0].weight)


def test_step_gflop_matches_the_design_figure():
    # DESIGN.md: about 95 GFLOP per forward+backward up to conv5_1 at 256 px on VGG19.
    assert 85 < step_gflop("vgg19", ["conv5_1"], (256, 256)) < 105


@pytest.mark.parametrize("files, expected", [
    ({"cpu.max": "200000 100000\n"}, 2.0),
    ({"cpu.max": "max 100000\n"}, None),
    ({"cpu/cpu.cfs_quota_us": "150000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 1.5),
    ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
    ({}, None),
])
def test_cpu_quota_reads_cgroup_limits(tmp_path, files, expected):
    from nst_core.model import cpu_quota
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert cpu_quota(str(tmp_path)) == expected


def test_configure_threads_never_exceeds_the_quota(tmp_path):
    from nst_core.model import configure_threads
    before = torch.get_num_threads()
    (tmp_path / "cpu.max").write_text("100000 100000\n")
    try:
        assert configure_threads(str(tmp_path)) == 1 and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("flags, expected", [("fpu sse avx512f avx512_bf16", "bf16"),
                                             ("fpu sse amx_bf16", "bf16"), ("fpu sse avx2", "fp32")])
def test_auto_precision_follows_the_cpu_flags_alone(tmp_path, monkeypatch, flags, expected):
    # Two processes building the same network must agree on "auto": it is part of the run's key.
    from nst_core import model as model_module
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nflags\t\t: {flags}\n")
    read_flags = model_module.cpu_has_fast_bf16.__wrapped__
    monkeypatch.setattr(model_module, "cpu_has_fast_bf16", lambda: read_flags(str(cpuinfo)))
    monkeypatch.setattr(model_module, "alternated_pass_times", lambda *a, **k: pytest.fail("no timing"))
    first, second = load_vgg("vgg16", "random", seed=0), load_vgg("vgg16", "random", seed=1)
    assert first.auto_precision() == second.auto_precision() == expected
