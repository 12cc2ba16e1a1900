"""timm:<model> as metric networks and feature extractors (tiny test_* models, random init)."""

from __future__ import annotations

import time

import mvm_core
import pytest
import safetensors.torch
import timm
import torch
from huggingface_hub import constants as hf_constants
from mvm_core.features import FeatureExtractor
from mvm_core.registry import UnknownNameError

from mvm_core_timm import TimmFeatureExtractor, TimmMetricNet
from mvm_core_timm.weights import (
    ALLOW_DOWNLOADS_ENV,
    WEIGHTS_DIR_ENV,
    WeightsNotFoundError,
    pretrained_kwargs,
)

pytest_plugins = ["mvm_core.testing"]

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    """An empty Hugging Face cache, downloads off, no weights folder: the offline default."""
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv(ALLOW_DOWNLOADS_ENV, raising=False)
    monkeypatch.delenv(WEIGHTS_DIR_ENV, raising=False)


@pytest.fixture(scope="module")
def saved_weights(tmp_path_factory):
    """A full test_resnet checkpoint (with its classifier), as a published file would be."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        model = timm.create_model("test_resnet")
    path = tmp_path_factory.mktemp("weights") / "test_resnet.safetensors"
    safetensors.torch.save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return path, model.state_dict()


def test_the_whole_timm_catalogue_with_wildcards(mvm_installed_plugins):
    assert mvm_core.list_backbones("timm:test_*") == sorted(
        (f"timm:{name}" for name in timm.list_models("test_*")), key=str.lower
    )
    assert "timm:test_resnet" in mvm_core.list_feature_extractors("timm:test_res*")
    assert "timm:*" in mvm_core.list_backbones()  # one row in plain listings
    with pytest.raises(UnknownNameError, match="Did you mean 'timm:test_resnet'"):
        mvm_core.create_backbone("timm:test_resnt")
    with pytest.raises(UnknownNameError):
        mvm_core.create_backbone("timm:test_resnet.no_such_tag")
    info = {p.name: p for p in mvm_installed_plugins.plugins()}["timm"]
    assert info.status == "loaded" and info.distribution == "mvm-core-timm"
    assert dict(info.registered) == {"backbones": ("timm:*",), "feature_extractors": ("timm:*",)}


def test_metric_net_embeds_and_trains(mvm_installed_plugins):
    net = mvm_core.create_backbone("timm:test_resnet", emb_dim=5)
    assert isinstance(net, TimmMetricNet) and not net.pretrained
    images = torch.rand(3, 3, 32, 32) * 2 - 1
    emb = net(images)
    assert emb.shape == (3, 5)
    emb.pow(2).sum().backward()
    assert net.body.conv1[0].weight.grad.abs().sum() > 0 and net.head.weight.grad is not None
    with pytest.raises(ValueError, match=r"shape \(N, 3, H, W\).*in_chans"):
        net(torch.zeros(2, 1, 32, 32))
    # the call shape of mvm_core.build for image data: resolve(kind, name, emb_dim=, in_chans=)
    grey = mvm_core.resolve("backbones", "timm:test_resnet", emb_dim=2, in_chans=1)
    assert grey(torch.zeros(2, 1, 32, 32)).shape == (2, 2)
    with pytest.raises(TypeError, match="num_classes is set by TimmMetricNet"):
        TimmMetricNet("test_resnet", num_classes=3)


def test_pretrained_without_a_file_fails_fast_naming_the_file():
    start = time.perf_counter()
    with pytest.raises(WeightsNotFoundError) as info:
        TimmMetricNet("test_resnet", pretrained=True)
    elapsed = time.perf_counter() - start
    message = str(info.value)
    for part in ("'test_resnet.r160_in1k'", "timm/test_resnet.r160_in1k", "model.safetensors",
                 "pretrained_file=", WEIGHTS_DIR_ENV, ALLOW_DOWNLOADS_ENV, "pretrained=False"):
        assert part in message
    assert elapsed < 2.0  # no network wait, no retries
    # the feature extractor is pretrained by default: same fast failure
    with pytest.raises(WeightsNotFoundError, match="not available offline"):
        mvm_core.create_feature_extractor("timm:test_resnet")


def test_pretrained_from_a_local_file(saved_weights):
    path, state = saved_weights
    net = TimmMetricNet("test_resnet", emb_dim=4, pretrained_file=path)
    assert net.pretrained
    assert torch.equal(net.body.conv1[0].weight, state["conv1.0.weight"])
    assert torch.equal(net.body.layer4[0].conv1.weight, state["layer4.0.conv1.weight"])
    # pretrained normalization (test_resnet: mean 0.5, std 0.5) maps [-1, 1] back to [-1, 1]
    assert torch.allclose(net._mean, torch.full((1, 3, 1, 1), 0.5))
    with pytest.raises(WeightsNotFoundError, match="does not exist"):
        TimmMetricNet("test_resnet", pretrained_file=path.parent / "missing.safetensors")


def test_weights_folder_and_hugging_face_cache_are_used(saved_weights, monkeypatch, tmp_path):
    path, state = saved_weights
    folder = tmp_path / "weights"
    folder.mkdir()
    (folder / "test_resnet.safetensors").write_bytes(path.read_bytes())
    monkeypatch.setenv(WEIGHTS_DIR_ENV, str(folder))
    kwargs = pretrained_kwargs("test_resnet", pretrained=True)
    assert kwargs["pretrained_cfg_overlay"]["file"] == str(folder / "test_resnet.safetensors")
    monkeypatch.delenv(WEIGHTS_DIR_ENV)
    # a file a previous download left in the Hugging Face cache (its on-disk layout)
    repo = tmp_path / "hf-cache" / "models--timm--test_resnet.r160_in1k"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("abc123")
    snapshot = repo / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot / "model.safetensors").write_bytes(path.read_bytes())
    kwargs = pretrained_kwargs("test_resnet", pretrained=True)
    assert kwargs["pretrained_cfg_overlay"]["file"] == str(snapshot / "model.safetensors")
    extractor = TimmFeatureExtractor("test_resnet", layers=["layer1"])  # pretrained, offline
    assert torch.equal(extractor.model.conv1[0].weight, state["conv1.0.weight"])
    assert extractor.input_size == 160  # the weights' input size


def test_downloads_only_when_allowed(monkeypatch):
    assert pretrained_kwargs("test_resnet", pretrained=False) == {"pretrained": False}
    assert pretrained_kwargs("test_resnet", pretrained=True, allow_download=True) == {"pretrained": True}
    monkeypatch.setenv(ALLOW_DOWNLOADS_ENV, "1")
    assert pretrained_kwargs("test_resnet", pretrained=True) == {"pretrained": True}
    with pytest.raises(WeightsNotFoundError):
        pretrained_kwargs("test_resnet", pretrained=True, allow_download=False)


def test_feature_extractor_layers_shapes_and_freezing(mvm_installed_plugins):
    extractor = mvm_core.create_feature_extractor("timm:test_resnet", pretrained=False)
    assert isinstance(extractor, FeatureExtractor)
    assert extractor.layers == ("act1", "layer1", "layer2", "layer3", "layer4")
    images = (torch.rand(2, 3, 32, 32) * 2 - 1).requires_grad_(True)
    features = extractor(images)
    assert list(features) == list(extractor.layers)
    assert features["layer1"].shape == (2, extractor.channels["layer1"], 8, 8)  # reduction 4
    assert features["layer4"].shape[-1] == 1  # reduction 32
    features["layer4"].sum().backward()
    assert images.grad.abs().sum() > 0  # gradients reach the images (GFMN)
    assert all(not p.requires_grad for p in extractor.parameters())  # weights frozen
    extractor.train()
    assert not extractor.training  # always eval
    some = TimmFeatureExtractor("test_resnet", layers=["layer2", "layer3"], pretrained=False)
    assert list(some(torch.zeros(1, 1, 32, 32))) == ["layer2", "layer3"]  # grey -> 3 channels
    with pytest.raises(ValueError, match=r"no layer\(s\) \['layer9'\]; it provides"):
        TimmFeatureExtractor("test_resnet", layers=["layer9"], pretrained=False)
