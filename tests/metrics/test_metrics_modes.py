import math

import pytest
import torch

from mvm_core.data.toy import GaussianMixture2D, grid, ring
from mvm_core.metrics.modes import PACGAN_NUM_SAMPLES, mode_coverage


def on_ring(k, radius=1.0):
    angle = 2 * math.pi * k / 8
    return [radius * math.cos(angle), radius * math.sin(angle)]


def test_hand_built_ring_samples():
    mixture = ring()  # 8 modes on the unit circle, std 0.01
    samples = torch.tensor(
        [
            on_ring(0),
            on_ring(0),
            on_ring(0),  # 3 exactly on mode 0
            [on_ring(1)[0] + 0.02, on_ring(1)[1]],
            on_ring(1),  # 2 within 2 std of mode 1
            [on_ring(2)[0] + 0.05, on_ring(2)[1]],  # 5 std from mode 2: low quality
            [0.0, 0.0],  # nowhere near a mode
        ]
    )
    report = mode_coverage(samples, mixture)
    assert report.counts.tolist() == [3, 2, 0, 0, 0, 0, 0, 0]
    assert report.modes == 2
    assert report.high_quality_fraction == pytest.approx(5 / 7)
    # reverse KL(q || uniform) with q = (3/5, 2/5)
    expected = 0.6 * math.log(0.6 * 8) + 0.4 * math.log(0.4 * 8)
    assert report.reverse_kl == pytest.approx(expected, rel=1e-12)
    assert report.assignments[:6].tolist() == [0, 0, 0, 1, 1, 2]
    assert report.high_quality.tolist() == [True] * 5 + [False, False]
    assert report.as_dict()["modes"] == 2.0


def test_threshold_is_strict_and_tensor_inputs_work():
    means = torch.tensor([[0.0, 0.0], [10.0, 0.0]])
    samples = torch.tensor(
        [[3.0, 0.0], [2.999, 0.0], [10.0, 0.0]]
    )  # exactly 3 std, just inside, on mode
    report = mode_coverage(samples, means, std=1.0)
    assert report.counts.tolist() == [1, 1]
    assert report.reverse_kl == pytest.approx(0.0, abs=1e-15)


def test_unequal_priors_and_per_mode_std():
    means = torch.tensor([[0.0, 0.0], [10.0, 0.0]])
    samples = torch.tensor([[0.0, 0.0]] * 3 + [[10.0, 0.0]])
    # q = (3/4, 1/4) equals the priors: KL 0
    report = mode_coverage(samples, means, std=1.0, priors=torch.tensor([3.0, 1.0]))
    assert report.reverse_kl == pytest.approx(0.0, abs=1e-15)
    # per-mode std: 4 units from mode 1 is high quality only when its std is 2
    far = torch.tensor([[6.0, 0.0]])
    assert mode_coverage(far, means, std=torch.tensor([1.0, 2.0])).counts.tolist() == [0, 1]
    assert mode_coverage(far, means, std=1.0).counts.tolist() == [0, 0]
    mixture = GaussianMixture2D(means, 1.0, weights=torch.tensor([3.0, 1.0]))
    assert mode_coverage(samples, mixture).reverse_kl == pytest.approx(0.0, abs=1e-15)


def test_perfect_and_collapsed_generators_on_the_grid():
    mixture = grid()
    g = torch.Generator().manual_seed(0)
    good = mode_coverage(mixture.sample(PACGAN_NUM_SAMPLES, g), mixture)
    assert good.modes == 25 and good.high_quality_fraction > 0.98 and good.reverse_kl < 0.02
    collapsed = mixture.means[4] + 0.05 * torch.randn(PACGAN_NUM_SAMPLES, 2, generator=g)
    bad = mode_coverage(collapsed, mixture)
    assert bad.modes == 1 and bad.reverse_kl == pytest.approx(math.log(25), rel=1e-12)


def test_no_high_quality_sample_gives_nan():
    report = mode_coverage(torch.tensor([[0.0, 0.0]]), ring())
    assert report.modes == 0 and report.high_quality_fraction == 0.0
    assert math.isnan(report.reverse_kl) and math.isnan(report.jsd)


def test_zero_prior_with_samples_is_infinite_kl():
    means = torch.tensor([[0.0, 0.0], [10.0, 0.0]])
    report = mode_coverage(
        torch.tensor([[10.0, 0.0]]), means, std=1.0, priors=torch.tensor([1.0, 0.0])
    )
    assert report.reverse_kl == math.inf


def test_bad_arguments():
    means = torch.zeros(3, 2)
    with pytest.raises(ValueError, match="std is required"):
        mode_coverage(torch.zeros(4, 2), means)
    with pytest.raises(ValueError, match="std must be a positive number"):
        mode_coverage(torch.zeros(4, 2), means, std=torch.tensor([1.0, 2.0]))
    with pytest.raises(ValueError, match="priors must be"):
        mode_coverage(torch.zeros(4, 2), means, std=1.0, priors=torch.tensor([1.0, -1.0, 1.0]))
    with pytest.raises(ValueError, match="not both"):
        mode_coverage(torch.zeros(4, 2), ring(), std=0.1)
    with pytest.raises(ValueError, match="same space"):
        mode_coverage(torch.zeros(4, 3), means, std=1.0)


# Stacked MNIST: discrete modes and KL(sample histogram || uniform)


def test_discrete_modes_all_covered_evenly_is_kl_zero():
    from mvm_core.metrics.modes import STACKED_MNIST_NUM_SAMPLES, discrete_mode_coverage

    assert STACKED_MNIST_NUM_SAMPLES == 26_000
    ids = torch.arange(1000).repeat(26)  # every mode 26 times
    report = discrete_mode_coverage(ids)
    assert report.modes == 1000 and report.num_modes == 1000
    assert report.reverse_kl == pytest.approx(0.0, abs=1e-12)


def test_discrete_modes_one_mode_is_kl_log_k():
    from mvm_core.metrics.modes import discrete_mode_coverage, histogram_mode_coverage

    report = discrete_mode_coverage(torch.full((26_000,), 417))
    assert report.modes == 1 and report.reverse_kl == pytest.approx(math.log(1000))
    assert int(report.counts[417]) == 26_000
    # half the samples on each of two modes of four: KL = log 4 - log 2
    two = histogram_mode_coverage(torch.tensor([5, 0, 5, 0]))
    assert two.modes == 2 and two.reverse_kl == pytest.approx(math.log(2))
    # a brute-force reference on an uneven histogram
    counts = torch.tensor([1, 2, 3, 0, 4])
    q = counts.double() / 10
    expected = sum(float(v) * math.log(float(v) * 5) for v in q if v > 0)
    assert histogram_mode_coverage(counts).reverse_kl == pytest.approx(expected)


def test_discrete_modes_reject_bad_ids():
    from mvm_core.metrics.modes import discrete_mode_coverage, histogram_mode_coverage

    with pytest.raises(ValueError, match="0..999"):
        discrete_mode_coverage(torch.tensor([0, 1000]))
    with pytest.raises(ValueError, match="integer"):
        discrete_mode_coverage(torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="no sample"):
        histogram_mode_coverage(torch.zeros(4, dtype=torch.long))


def test_stacked_modes_through_evaluate():
    from mvm_core.metrics import evaluate

    ids = torch.cat([torch.arange(500), torch.arange(500)])  # half the modes, evenly
    out = evaluate(None, None, "stacked_modes", space="mnist-classifier", fake_modes=ids)
    assert out == {"modes@mnist-classifier": 500.0,
                   "reverse_kl@mnist-classifier": pytest.approx(math.log(2))}
