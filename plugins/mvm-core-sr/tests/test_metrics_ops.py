"""SR protocol pieces: Y conversion, PSNR, SSIM (against scikit-image), bicubic (against PIL), crops."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mvm_core_sr import metrics as srm
from mvm_core_sr.metrics import evaluate_sr, load_lpips, psnr, ssim, y_metrics
from mvm_core_sr.ops import bicubic_downsample, bicubic_resize, modcrop, quantize, rgb_to_y, shave

torch.set_num_threads(1)


def test_y_channel_by_hand():
    white, black = torch.ones(1, 3, 2, 2), -torch.ones(1, 3, 2, 2)
    assert torch.allclose(rgb_to_y(white), torch.full((1, 1, 2, 2), 235.0, dtype=torch.float64))
    assert torch.allclose(rgb_to_y(black), torch.full((1, 1, 2, 2), 16.0, dtype=torch.float64))
    red = torch.tensor([1.0, -1.0, -1.0]).view(1, 3, 1, 1)
    assert rgb_to_y(red).item() == pytest.approx(16 + 65.481)
    gray = torch.zeros(1, 1, 1, 1)  # 0 in [-1, 1] is 127.5 on the 8-bit scale
    assert rgb_to_y(gray).item() == pytest.approx(127.5)


def test_psnr_by_hand():
    x = torch.zeros(2, 1, 2, 2)
    y = x.clone()
    y[0, 0, 0, 0] = 10.0  # MSE = 100 / 4 = 25 -> 10 log10(255^2 / 25)
    y[1] += 1.0  # MSE = 1
    expected = [10 * math.log10(255**2 / 25), 10 * math.log10(255**2)]
    assert psnr(x, y).tolist() == pytest.approx(expected)
    assert math.isinf(psnr(x, x)[0].item())


@pytest.mark.parametrize("shape", [(32, 40), (11, 11), (57, 23)])
def test_ssim_equals_scikit_image(shape):
    from skimage.metrics import structural_similarity

    rng = np.random.default_rng(sum(shape))
    base = rng.uniform(0, 255, shape)
    smooth = np.cumsum(np.cumsum(rng.normal(size=shape), 0), 1)  # structure, not only noise
    a = np.clip(0.5 * base + 0.5 * (smooth - smooth.min()) / np.ptp(smooth) * 255, 0, 255)
    b = np.clip(a + rng.normal(0, 15, shape), 0, 255)
    ref = structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                data_range=255)
    ours = ssim(torch.tensor(a)[None, None], torch.tensor(b)[None, None]).item()
    assert ours == pytest.approx(ref, abs=1e-9)
    assert ssim(torch.tensor(a)[None, None], torch.tensor(a)[None, None]).item() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="window"):
        ssim(torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 8, 8))


def test_bicubic_matches_pil_and_downsample_quantizes():
    from PIL import Image

    rng = np.random.default_rng(0)
    img = (np.cumsum(rng.normal(size=(40, 48, 3)), 1) * 8 + 128).clip(0, 255).astype(np.uint8)
    pil = np.asarray(Image.fromarray(img).resize((24, 20), Image.BICUBIC)).astype(np.float32)
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 127.5 - 1
    ours = ((bicubic_downsample(x, 2)[0].permute(1, 2, 0) + 1) * 127.5).numpy()
    assert np.abs(ours - pil).max() <= 2.0 and np.abs(ours - pil).mean() < 0.5  # PIL rounds in fixed point
    assert np.allclose(ours, np.round(ours), atol=1e-3)  # 8-bit levels
    assert bicubic_resize(x, scale=2).shape == (1, 3, 80, 96)
    with pytest.raises(ValueError, match="modcrop"):
        bicubic_downsample(x[..., :39, :], 2)


def test_crops_and_quantize():
    x = torch.arange(7 * 9, dtype=torch.float32).view(1, 1, 7, 9)
    assert modcrop(x, 2).shape[-2:] == (6, 8) and modcrop(x, 3).shape[-2:] == (6, 9)
    assert torch.equal(shave(x, 2), x[..., 2:5, 2:7])
    with pytest.raises(ValueError, match="too small"):
        shave(x, 4)
    q = quantize(torch.tensor([-2.0, 0.001, 1.0]))
    assert q.tolist() == pytest.approx([-1.0, 0.5 / 127.5, 1.0], abs=1e-6)  # 128 / 127.5 - 1


def test_y_metrics_drop_the_border():
    hr = quantize(torch.zeros(1, 3, 20, 20))  # on the 8-bit levels, as outputs are rounded to them
    out = hr.clone()
    out[..., :2, :] = 1.0  # errors only in a 2 px border
    assert math.isinf(y_metrics(out, hr, border=2)["psnr"].item())
    assert y_metrics(out, hr, border=0)["psnr"].item() < 20


def test_evaluate_sr_reports_model_and_bicubic():
    torch.manual_seed(0)
    hr = quantize(torch.nn.functional.interpolate(torch.rand(2, 3, 8, 8) * 2 - 1, size=(24, 24), mode="bilinear"))
    lr = bicubic_downsample(hr, 2)
    perfect = evaluate_sr(lambda _: hr, [(lr, hr)], scale=2, metrics=("psnr", "ssim"))
    assert set(perfect) == {"psnr@y", "ssim@y", "bicubic_psnr@y", "bicubic_ssim@y"}
    assert math.isinf(perfect["psnr@y"]) and perfect["ssim@y"] == pytest.approx(1.0)
    assert 20 < perfect["bicubic_psnr@y"] < 60
    same = evaluate_sr(lambda x: bicubic_resize(x, scale=2), [(lr, hr)], 2, ("psnr",))
    assert same["psnr@y"] == pytest.approx(same["bicubic_psnr@y"])
    with pytest.raises(ValueError, match="unknown"):
        evaluate_sr(lambda x: x, [(lr, hr)], 2, ("fid",))


def test_lpips_fails_fast_and_offline(monkeypatch):
    monkeypatch.setattr(srm, "_lpips_problem", lambda: "the `lpips` package is not installed")
    assert not srm.lpips_available()
    with pytest.raises(RuntimeError, match="never downloads"):
        load_lpips()
    lr, hr = torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 16, 16)
    with pytest.raises(RuntimeError, match="LPIPS is unavailable"):
        evaluate_sr(lambda x: hr, [(lr, hr)], 2, ("psnr", "lpips"))
    assert "lpips@alex" not in evaluate_sr(lambda x: hr, [(lr, hr)], 2, window=3)  # default: skipped
