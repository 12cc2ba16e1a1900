"""SR networks (shapes, scales, bicubic start) and the offline SR datasets (crops, pairing, splits)."""

from __future__ import annotations

import mvm_core
import numpy as np
import pytest
import torch

from mvm_core_sr import (
    RDN,
    PatchMetricNet,
    SRResNet,
    digits_dataset,
    folder_dataset,
    skimage_dataset,
)
from mvm_core_sr.data import SRCropDataset, image_to_tensor
from mvm_core_sr.nets import DetailBand
from mvm_core_sr.ops import bicubic_downsample, bicubic_resize

torch.set_num_threads(1)


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("net", ["SRResNet", "RDN"])
def test_generators_upscale_and_start_as_bicubic(net, scale):
    kwargs = {"width": 8, "blocks": 2} if net == "SRResNet" else {"width": 8, "blocks": 2, "layers": 2, "growth": 4}
    g = mvm_core.create_generator(f"sr:{net}", scale=scale, channels=3, **kwargs)
    x = torch.rand(2, 3, 6, 5) * 2 - 1
    y = g(x)
    assert y.shape == (2, 3, 6 * scale, 5 * scale)
    assert torch.allclose(y, bicubic_resize(x, scale=scale), atol=1e-6)  # zero-initialised residual
    y.sum().backward()
    assert g.tail.weight.grad.abs().sum() > 0  # and it trains from there
    plain = type(g)(scale=scale, channels=1, bicubic_skip=False, **kwargs)
    assert plain(torch.zeros(1, 1, 4, 4)).shape == (1, 1, 4 * scale, 4 * scale)


def test_generator_argument_errors():
    with pytest.raises(ValueError, match="scale"):
        SRResNet(scale=5)
    with pytest.raises(ValueError, match="channels"):
        RDN(channels=2)
    with pytest.raises(ValueError, match="blocks"):
        SRResNet(blocks=0)
    with pytest.raises(ValueError, match=r"\(B, 3, h, w\)"):
        SRResNet(width=4, blocks=1)(torch.zeros(1, 1, 4, 4))


def test_patch_metric_net_takes_any_patch_size():
    m = mvm_core.create_backbone("sr:PatchMetricNet", channels=1, emb_dim=5, width=4, stages=2)
    assert m(torch.zeros(3, 1, 16, 16)).shape == (3, 5) and m(torch.zeros(2, 1, 12, 20)).shape == (2, 5)
    with pytest.raises(ValueError, match="H, W >= 4"):
        m(torch.zeros(1, 1, 2, 8))
    sn = PatchMetricNet(emb_dim=3, width=4, stages=1, spectral_norm=True, detail=False)
    assert sn(torch.zeros(1, 3, 8, 8)).shape == (1, 3) and sn.detail is None


def test_detail_band_keeps_only_fine_detail():
    band = DetailBand(gain=1.0)
    flat = torch.full((1, 1, 12, 12), 0.3)
    checker = (torch.arange(12).view(12, 1) + torch.arange(12)).remainder(2).float().view(1, 1, 12, 12)
    assert band(flat).abs().max() < 1e-6  # constants have no detail
    assert band(checker).abs().mean() > 0.3  # the finest pattern is all detail
    smooth = bicubic_resize(torch.rand(1, 1, 6, 6), scale=2)  # an image with no detail to restore
    assert band(smooth).abs().mean() < 0.25 * band(checker).abs().mean()


def test_image_to_tensor_conventions():
    gray = np.array([[0, 255]], dtype=np.uint8)
    assert image_to_tensor(gray).shape == (3, 1, 2) and image_to_tensor(gray)[:, 0, 1].tolist() == [1.0] * 3
    rgba = np.zeros((2, 2, 4), dtype=np.uint8)
    assert image_to_tensor(rgba, channels=1).shape == (1, 2, 2)
    assert image_to_tensor(np.ones((2, 2), dtype=bool)).min() == 1.0
    with pytest.raises(TypeError, match="uint8"):
        image_to_tensor(np.zeros((2, 2), dtype=np.float32))


def test_crops_are_paired_reproducible_and_augmented():
    torch.manual_seed(0)
    images = [torch.rand(3, 40, 52) * 2 - 1, torch.rand(3, 33, 30) * 2 - 1]
    ds = SRCropDataset(images, [torch.rand(3, 24, 24) * 2 - 1], scale=2, patch_size=12, length=50, seed=3,
                       heldout_count=5)
    lr, hr = ds[7]
    assert lr.shape == (3, 6, 6) and hr.shape == (3, 12, 12)
    assert torch.equal(ds[7][1], hr)  # the same index is the same crop
    other = SRCropDataset(images, [images[1]], scale=2, patch_size=12, length=50, seed=4)
    assert not torch.equal(other[7][1], hr)
    # the low-res crop is the bicubic image of the high-res crop away from the crop's edge
    plain = SRCropDataset(images, [images[1]], scale=2, patch_size=12, length=50, seed=3, augment=False)
    for i in range(10):
        lr, hr = plain[i]
        inner = (bicubic_downsample(hr[None], 2)[0] - lr)[:, 2:-2, 2:-2]
        assert inner.abs().max() < 2.5 / 127.5  # within two 8-bit levels
    held_lr, held_hr = ds.heldout(3)
    assert held_lr.shape == (3, 3, 6, 6) and held_hr.shape == (3, 3, 12, 12)
    pairs = list(ds.test_pairs())
    assert len(pairs) == 1 and pairs[0][1].shape == (1, 3, 24, 24) and pairs[0][0].shape == (1, 3, 12, 12)
    with pytest.raises(ValueError, match="multiple of scale"):
        SRCropDataset(images, images, scale=2, patch_size=11)
    with pytest.raises(ValueError, match="smaller than patch_size"):
        SRCropDataset(images, images, scale=2, patch_size=36)


def test_skimage_photos_offline():
    ds = mvm_core.create_dataset("sr:skimage", scale=2, patch_size=16, train=("camera", "coins"),
                                 test=("moon",), test_crop=64)
    assert ds.paired and len(ds.hr) == 2 and ds.test_hr[0].shape == (3, 64, 64)
    assert ds.input_shape == (3, 8, 8) and ds.sample_shape == (3, 16, 16)
    with pytest.raises(ValueError, match="both train and test"):
        skimage_dataset(train=("camera",), test=("camera",))
    with pytest.raises(ValueError, match="no image"):
        skimage_dataset(train=("not_an_image",), test=("moon",))


def test_folder_holds_out_the_last_images(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(4):
        Image.fromarray(rng.integers(0, 255, (30 + i, 28, 3), dtype=np.uint8)).save(tmp_path / f"{i}.png")
    ds = folder_dataset(tmp_path, scale=2, patch_size=8, test_fraction=0.25)
    assert len(ds.hr) == 3 and len(ds.test_hr) == 1 and ds.test_hr[0].shape == (3, 32, 28)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        folder_dataset(tmp_path / "missing")


def test_digits_x2():
    ds = mvm_core.create_dataset("sr:digits")
    assert ds.inputs.shape[1:] == (1, 8, 8) and ds.targets.shape[1:] == (1, 16, 16)
    assert len(ds) == 1500 and ds.heldout()[0].shape[0] == 297
    assert torch.allclose(bicubic_downsample(ds.targets[:4], 2), ds.inputs[:4])
    with pytest.raises(ValueError, match="image_size"):
        digits_dataset(image_size=8)
