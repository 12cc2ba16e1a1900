import math

import pytest
import torch

from mvm_core.metrics.diversity import mean_pairwise_distance, random_pairs
from mvm_core.metrics.nearest_train import memorization, nearest_train_distances


def test_all_pairs_mean_hand_checked():
    x = torch.tensor([[0.0, 0.0], [3.0, 4.0], [0.0, 4.0]])
    # pairs: 5, 4, 3
    assert mean_pairwise_distance(x) == pytest.approx(4.0, rel=1e-12)


def test_all_pairs_matches_brute_force_with_chunks(rng):
    x = torch.randn(101, 7, generator=rng, dtype=torch.float64)
    d = torch.cdist(x, x)
    expected = float(d.sum() / (101 * 100))
    assert mean_pairwise_distance(x) == pytest.approx(expected, rel=1e-10)
    assert mean_pairwise_distance(x, block_elements=150) == pytest.approx(expected, rel=1e-10)


def test_random_pairs_are_distinct_and_cover_all_pairs():
    i, j = random_pairs(4, 20000, torch.Generator().manual_seed(0))
    assert not bool((i == j).any())
    counts = torch.bincount(i * 4 + j, minlength=16).reshape(4, 4)
    off = counts[~torch.eye(4, dtype=torch.bool)].double()
    assert float(off.min()) > 0.8 * 20000 / 12  # roughly uniform over the 12 ordered pairs


def test_distance_fn_scores_the_sampled_pairs(rng):
    images = torch.randn(30, 1, 4, 4, generator=rng)
    calls = []

    def l1(a, b):  # a stand-in for LPIPS: (B, C, H, W) x 2 -> (B, 1, 1, 1)
        calls.append(a.shape[0])
        return (a - b).abs().mean(dim=(1, 2, 3), keepdim=True)

    value = mean_pairwise_distance(
        images,
        distance_fn=l1,
        num_pairs=50,
        batch_size=16,
        generator=torch.Generator().manual_seed(1),
    )
    i, j = random_pairs(30, 50, torch.Generator().manual_seed(1))
    expected = float((images[i] - images[j]).abs().mean(dim=(1, 2, 3)).double().mean())
    assert value == pytest.approx(expected, rel=1e-6)
    assert calls == [16, 16, 16, 2]


def test_diversity_errors(rng):
    with pytest.raises(ValueError, match="at least 2 samples"):
        mean_pairwise_distance(torch.randn(1, 3))
    with pytest.raises(ValueError, match="one distance per pair"):
        mean_pairwise_distance(
            torch.randn(5, 3), distance_fn=lambda a, b: torch.zeros(1), num_pairs=4
        )


def test_nearest_train_distances_brute_force(rng):
    fake, train = torch.randn(40, 5, generator=rng), torch.randn(60, 5, generator=rng)
    expected = torch.cdist(fake.double(), train.double()).min(1).values
    torch.testing.assert_close(
        nearest_train_distances(fake, train), expected, rtol=1e-12, atol=1e-12
    )


def test_memorization_flags_copies(rng):
    train = torch.randn(200, 6, generator=rng)
    heldout = torch.randn(100, 6, generator=rng)
    copies = train[:100].clone()
    copied = memorization(copies, train, heldout)
    assert copied.nn_distance == 0.0 and copied.ratio == 0.0 and copied.copy_fraction == 1.0
    fresh = memorization(torch.randn(100, 6, generator=rng), train, heldout)
    assert 0.7 < fresh.ratio < 1.3 and fresh.copy_fraction < 0.05
    alone = memorization(copies, train)
    assert alone.nn_distance == 0.0 and math.isnan(alone.ratio) and math.isnan(alone.copy_fraction)
