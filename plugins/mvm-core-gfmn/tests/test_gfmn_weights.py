"""Weights lookup order, fail-fast messages, explicit downloads, file validation."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch
import torchvision
from safetensors.torch import save_file

from mvm_core_gfmn.torchvision_extractors import ResNet18Features, VGG19Features
from mvm_core_gfmn.weights import (
    WeightsNotFoundError,
    WeightsSpec,
    load_state_dict_file,
    resolve_weights,
    verify_hash_prefix,
)

SPEC = WeightsSpec("toy-0123abcd.pth", "https://example.invalid/toy-0123abcd.pth")


def _write(path: Path, value: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"w": torch.full((2,), value)}, path)
    return path


def test_lookup_order_explicit_then_env_then_torch_home(tmp_path, monkeypatch):
    hub = Path(torch.hub.get_dir()) / "checkpoints"
    assert hub == tmp_path / "torch_home" / "hub" / "checkpoints"  # TORCH_HOME honoured
    _write(hub / SPEC.file_name, 3.0)
    assert resolve_weights(SPEC) == hub / SPEC.file_name
    env_dir = tmp_path / "weights"
    _write(env_dir / SPEC.file_name, 2.0)
    monkeypatch.setenv("MVM_CORE_WEIGHTS_DIR", str(env_dir))
    assert resolve_weights(SPEC) == env_dir / SPEC.file_name
    explicit = _write(tmp_path / "mine.pth", 1.0)
    assert resolve_weights(SPEC, explicit) == explicit
    assert resolve_weights(SPEC, env_dir) == env_dir / SPEC.file_name  # a folder holding it
    assert load_state_dict_file(resolve_weights(SPEC, explicit))["w"].tolist() == [1.0, 1.0]


def test_missing_weights_fail_fast_naming_the_file_and_the_fixes(tmp_path):
    with pytest.raises(WeightsNotFoundError) as info:
        VGG19Features()
    message = str(info.value)
    hub = tmp_path / "torch_home" / "hub" / "checkpoints"
    for expected in ("'vgg19-dcbb9e9d.pth' not found", str(hub / "vgg19-dcbb9e9d.pth"),
                     "MVM_CORE_WEIGHTS_DIR", "allow_download=True", "weights=None",
                     "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"):
        assert expected in message
    with pytest.raises(WeightsNotFoundError, match="'resnet18-f37072fd.pth' not found"):
        ResNet18Features()


def test_explicit_path_that_does_not_exist_is_an_error(tmp_path, monkeypatch):
    _write(tmp_path / "weights" / SPEC.file_name, 2.0)
    monkeypatch.setenv("MVM_CORE_WEIGHTS_DIR", str(tmp_path / "weights"))
    with pytest.raises(WeightsNotFoundError, match="does not exist"):
        resolve_weights(SPEC, tmp_path / "typo.pth")  # never falls through to the env folder


def test_download_only_when_allowed(tmp_path, monkeypatch):
    calls = []

    def fake_download(url, dst, hash_prefix=None):
        calls.append((url, Path(dst).name, hash_prefix))
        _write(Path(dst), 4.0)

    monkeypatch.setattr(torch.hub, "download_url_to_file", fake_download)
    with pytest.raises(WeightsNotFoundError):
        resolve_weights(SPEC)
    assert calls == []
    path = resolve_weights(SPEC, allow_download=True)
    assert calls == [(SPEC.url, SPEC.file_name, "0123abcd")]
    assert path == tmp_path / "torch_home" / "hub" / "checkpoints" / SPEC.file_name


def test_hash_check_and_non_state_dict_files(tmp_path):
    good = _write(tmp_path / "a.pth", 1.0)
    prefix = hashlib.sha256(good.read_bytes()).hexdigest()[:8]
    verify_hash_prefix(good, WeightsSpec(f"toy-{prefix}.pth", "u"))
    with pytest.raises(ValueError, match="corrupt or a different model"):
        verify_hash_prefix(good, SPEC)
    torch.save([torch.zeros(1)], tmp_path / "list.pth")
    with pytest.raises(ValueError, match="does not hold a state dict"):
        load_state_dict_file(tmp_path / "list.pth")
    save_file({"w": torch.ones(2)}, str(tmp_path / "a.safetensors"))
    assert load_state_dict_file(tmp_path / "a.safetensors")["w"].tolist() == [1.0, 1.0]


def test_resnet18_loads_from_torch_home_and_matches_torchvision(tmp_path):
    torch.manual_seed(0)
    reference = torchvision.models.resnet18(weights=None).eval()
    with torch.no_grad():  # non-trivial batch-norm statistics
        for module in reference.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    hub = tmp_path / "torch_home" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    torch.save(reference.state_dict(), hub / "resnet18-f37072fd.pth")
    extractor = ResNet18Features(layers=["layer1.1", "layer3.0"], input_size=32)
    assert extractor.weights_source == str(hub / "resnet18-f37072fd.pth")
    assert len(extractor.blocks) == 5  # runs only up to layer3.0
    images = torch.rand(2, 3, 32, 32) * 2 - 1
    captured = {}
    reference.layer1[1].register_forward_hook(lambda m, i, o: captured.__setitem__("l11", o))
    reference.layer3[0].register_forward_hook(lambda m, i, o: captured.__setitem__("l30", o))
    with torch.no_grad():
        reference(extractor.preprocess(images))
        out = extractor(images)
    torch.testing.assert_close(out["layer1.1"], captured["l11"])
    torch.testing.assert_close(out["layer3.0"], captured["l30"])


def test_vgg19_rejects_a_file_of_another_architecture(tmp_path):
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), tmp_path / "r.pth")
    with pytest.raises(ValueError, match="not a torchvision VGG19 state dict"):
        VGG19Features(weights=tmp_path / "r.pth", layers=["relu1_1"])
