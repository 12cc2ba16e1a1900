"""Streaming real statistics against one-shot float64 computations."""

from __future__ import annotations

import pytest
import torch
from mvm_core.features import FeatureExtractor

from mvm_core_gfmn.statistics import (
    FeatureStatistics,
    RunningMoments,
    compute_real_statistics,
    statistics_distance,
)


class FlattenAndSquare(FeatureExtractor):
    """Two 'layers' that are exact functions of the pixels: identity and square (no weights)."""

    layers = ("pixels", "squares")
    input_channels = 1
    mean = (0.5,)
    std = (0.5,)  # preprocessing is the identity on [-1, 1]

    def __init__(self, selected=None):
        super().__init__(selected)
        self.freeze()

    def extract(self, x):
        out = {"pixels": x, "squares": x * x}
        return {k: out[k] for k in self.selected}


def test_running_moments_equal_one_shot_float64_with_uneven_batches():
    gen = torch.Generator().manual_seed(0)
    data = torch.randn(203, 7, generator=gen, dtype=torch.float64) * 4 + 2
    moments = RunningMoments()
    start = 0
    for size in (1, 2, 50, 3, 97, 37, 13):
        moments.update(data[start : start + size])
        start += size
    assert start == data.shape[0] and moments.count == 203
    torch.testing.assert_close(moments.mean, data.mean(0), rtol=1e-13, atol=1e-13)
    torch.testing.assert_close(moments.variance(), data.var(0, unbiased=True), rtol=1e-12,
                               atol=1e-12)
    torch.testing.assert_close(moments.variance(unbiased=False), data.var(0, unbiased=False),
                               rtol=1e-12, atol=1e-12)


def test_running_moments_survive_a_large_offset_in_float32_input():
    # float32 rows around 1e4 with spread 1e-2: sum(x^2) - n mean^2 in float32 would give
    # garbage; the merge of float64 centred moments gives the float64 two-pass answer.
    gen = torch.Generator().manual_seed(1)
    data = (1e4 + 1e-2 * torch.randn(1000, 3, generator=gen, dtype=torch.float64)).float()
    moments = RunningMoments()
    for chunk in data.split(64):
        moments.update(chunk)
    reference = data.double().var(0, unbiased=True)
    torch.testing.assert_close(moments.variance(), reference, rtol=1e-9, atol=0)


def test_compute_real_statistics_matches_direct_computation():
    gen = torch.Generator().manual_seed(2)
    images = torch.rand(45, 1, 4, 4, generator=gen) * 2 - 1
    sizes = (5, 17, 1, 22)
    batches = list(images.split(sizes))
    batches[1] = (batches[1], torch.zeros(17))  # DataLoader-style (images, labels) tuple
    stats = compute_real_statistics(FlattenAndSquare(), iter(batches))
    assert stats.count == 45 and stats.layers == ("pixels", "squares")
    flat = images.double().flatten(1)
    torch.testing.assert_close(stats.mean["pixels"], flat.mean(0), rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(stats.var["squares"], (flat * flat).var(0), rtol=1e-5, atol=1e-7)
    assert stats.mean["pixels"].dtype == torch.float64


def test_compute_real_statistics_rejects_bad_input():
    with pytest.raises(ValueError, match="batches is empty"):
        compute_real_statistics(FlattenAndSquare(), [])
    with pytest.raises(ValueError, match=r"batch 1 must be images \(N, C, H, W\)"):
        compute_real_statistics(FlattenAndSquare(), [torch.zeros(2, 1, 3, 3), torch.zeros(2, 9)])
    with pytest.raises(ValueError, match="same feature size"):
        compute_real_statistics(FlattenAndSquare(),
                                [torch.zeros(2, 1, 3, 3), torch.zeros(2, 1, 4, 4)])
    with pytest.raises(TypeError, match="FeatureExtractor"):
        compute_real_statistics(torch.nn.Identity(), [torch.zeros(2, 1, 3, 3)])


def test_statistics_distance_by_hand():
    real = FeatureStatistics({"a": torch.tensor([1.0, 2.0])}, {"a": torch.tensor([1.0, 1.0])}, 10)
    fake = FeatureStatistics({"a": torch.tensor([0.0, 4.0])}, {"a": torch.tensor([3.0, 1.0])}, 10)
    # mean part (1 + 4) + variance part (4 + 0)
    assert statistics_distance(real, fake) == {"a": 9.0}
    assert statistics_distance(real, fake, match_variance=False) == {"a": 5.0}
    with pytest.raises(ValueError, match="same layers"):
        FeatureStatistics({"a": torch.zeros(2)}, {"b": torch.zeros(2)}, 3)


def test_chunked_merge_bounds_memory_and_changes_nothing():
    data = torch.randn(50, 30, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    small = RunningMoments(max_elements=70)  # chunks of 2 rows
    small.update(data)
    torch.testing.assert_close(small.mean, data.mean(0), rtol=1e-13, atol=1e-13)
    torch.testing.assert_close(small.variance(), data.var(0), rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="at least 2 samples"):
        single = RunningMoments()
        single.update(data[:1])
        single.variance()
