"""Extractors: frozen weights with gradients to the input, layers, agreement with torchvision."""

from __future__ import annotations

import pytest
import torch
import torchvision

from mvm_core_gfmn.digits import DigitsClassifierFeatures
from mvm_core_gfmn.tiny import TinyConvFeatures
from mvm_core_gfmn.torchvision_extractors import (
    _VGG19_DEPTH,
    _VGG19_RELUS,
    ResNet18Features,
    VGG19Features,
)

FROZEN = [
    lambda: TinyConvFeatures(),
    lambda: VGG19Features(weights=None, input_size=32, layers=["relu1_1", "relu2_2"]),
    lambda: ResNet18Features(weights=None, input_size=32, layers=["layer1.0", "layer2.1"]),
]


@pytest.mark.parametrize("index", range(3))
def test_extractors_are_frozen_but_pass_gradients_to_images(index):
    extractor = FROZEN[index]()
    extractor.train()  # must stay in eval mode
    assert not extractor.training and not any(m.training for m in extractor.modules())
    assert all(not p.requires_grad for p in extractor.parameters())
    images = (torch.rand(3, 1, 8, 8) * 2 - 1).requires_grad_(True)
    outputs = extractor(images)
    assert tuple(outputs) == extractor.selected
    sum(o.square().mean() for o in outputs.values()).backward()
    assert images.grad is not None and images.grad.abs().sum() > 0
    assert all(p.grad is None for p in extractor.parameters())


def test_vgg19_layout_matches_torchvision():
    with torch.device("meta"):  # structure only: no memory, no initialization
        features = torchvision.models.vgg19(weights=None).features
    assert len(features) == _VGG19_DEPTH
    relus = [i for i, m in enumerate(features) if isinstance(m, torch.nn.ReLU)]
    assert relus == sorted(_VGG19_RELUS)
    assert VGG19Features.layers[0] == "relu1_1" and VGG19Features.layers[-1] == "relu5_4"
    assert len(VGG19Features.layers) == 16
    ours = VGG19Features(weights=None, input_size=32, layers=["relu5_4"]).body
    theirs = {k: tuple(v.shape) for k, v in features.state_dict().items()}
    assert {k: tuple(v.shape) for k, v in ours.state_dict().items()} == theirs


def test_vgg19_loads_a_features_file_and_equals_torchvision(tmp_path, monkeypatch):
    torch.manual_seed(0)
    with torch.device("meta"):
        reference = torchvision.models.vgg19(weights=None).features
    reference = reference.to_empty(device="cpu")[:7]  # up to relu2_1 (index 6)
    for module in reference:
        if isinstance(module, torch.nn.Conv2d):
            torch.nn.init.normal_(module.weight, std=0.1)
            torch.nn.init.normal_(module.bias, std=0.1)
    full = VGG19Features(weights=None, input_size=32, layers=["relu5_4"]).body.state_dict()
    full.update(reference.state_dict())
    folder = tmp_path / "weights"
    folder.mkdir()
    torch.save({f"features.{k}": v for k, v in full.items()}, folder / "vgg19-dcbb9e9d.pth")
    monkeypatch.setenv("MVM_CORE_WEIGHTS_DIR", str(folder))
    extractor = VGG19Features(layers=["relu1_2", "relu2_1"], input_size=32)
    assert extractor.weights_source == str(folder / "vgg19-dcbb9e9d.pth")
    images = torch.rand(2, 3, 20, 20) * 2 - 1
    with torch.no_grad():
        out = extractor(images)
        x = extractor.preprocess(images)
        assert x.shape[-1] == 32
        expected = {}
        for index, module in enumerate(reference):
            x = module(x)
            expected[index] = x.clone()
    torch.testing.assert_close(out["relu1_2"], expected[3])
    torch.testing.assert_close(out["relu2_1"], expected[6])


def test_layer_selection_and_arguments_are_checked():
    with pytest.raises(ValueError, match=r"has no layer\(s\) \['relu6_1'\]"):
        VGG19Features(weights=None, layers=["relu6_1"])
    with pytest.raises(ValueError, match="input_size must be an int >= 32"):
        ResNet18Features(weights=None, input_size=16)
    with pytest.raises(ValueError, match="positive widths"):
        TinyConvFeatures(widths=())
    a, b = TinyConvFeatures(seed=3), TinyConvFeatures(seed=3)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


def test_digits_classifier_wrapper_reproduces_the_classifier_features():
    from mvm_core.metrics.digits_classifier import DigitsClassifier, DigitsNet

    torch.manual_seed(0)
    net = DigitsNet()
    wrapper = DigitsClassifierFeatures(net=net)
    images = torch.rand(4, 1, 16, 16) * 2 - 1
    with torch.no_grad():
        out = wrapper(images)
        expected = DigitsClassifier(net).features(images)
    assert {k: tuple(v.shape[1:]) for k, v in out.items()} == {
        "relu1": (16, 8, 8), "relu2": (32, 8, 8), "relu3": (64, 4, 4), "features": (64,)}
    torch.testing.assert_close(out["features"], expected)
    shallow = DigitsClassifierFeatures(["relu2"], net=net)
    torch.testing.assert_close(shallow(images)["relu2"], out["relu2"])
