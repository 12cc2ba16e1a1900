import numpy as np
import pytest
import scipy.linalg
import torch

from mvm_core.metrics.frechet import (
    feature_statistics,
    fid,
    frechet_distance,
    load_statistics,
    save_statistics,
    sqrtm_psd,
    trace_sqrt_product,
)


def random_spd(d, rank=None, seed=0):
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(d, rank or d, generator=g, dtype=torch.float64)
    return a @ a.T + (0 if rank else 0.1) * torch.eye(d, dtype=torch.float64)


def with_exact_moments(n, mean, cov, seed=0):
    """n samples whose empirical mean and (n - 1)-covariance are exactly ``mean`` and ``cov``."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, mean.shape[0], generator=g, dtype=torch.float64)
    z = z - z.mean(0)
    emp = z.T @ z / (n - 1)
    z = z @ torch.linalg.inv(torch.linalg.cholesky(emp)).T  # empirical cov = I
    return mean + z @ torch.linalg.cholesky(cov).T


def test_sqrtm_psd_matches_scipy():
    a = random_spd(20, seed=1)
    ours = sqrtm_psd(a)
    theirs = torch.from_numpy(np.real(scipy.linalg.sqrtm(a.numpy())))
    torch.testing.assert_close(ours, theirs, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(ours @ ours, a, rtol=1e-10, atol=1e-10)


def test_sqrtm_psd_of_singular_matrix():
    a = random_spd(12, rank=4, seed=2)  # rank 4: what covariances of 5 samples in 12-D look like
    root = sqrtm_psd(a)
    torch.testing.assert_close(root @ root, a, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(root, root.T)


@pytest.mark.parametrize("rank", [None, 5])
def test_trace_sqrt_product_matches_scipy(rank):
    s1, s2 = random_spd(16, seed=3), random_spd(16, rank=rank, seed=4)
    expected = np.trace(scipy.linalg.sqrtm(s1.numpy() @ s2.numpy())).real
    assert float(trace_sqrt_product(s1, s2)) == pytest.approx(expected, rel=1e-7)


def test_frechet_distance_closed_form_diagonal():
    mu1, mu2 = torch.tensor([0.0, 1.0, 2.0]), torch.tensor([1.0, 1.0, 0.0])
    a, b = torch.tensor([1.0, 4.0, 9.0]), torch.tensor([4.0, 4.0, 1.0])
    expected = (1 + 0 + 4) + (
        (1 - 2) ** 2 + (2 - 2) ** 2 + (3 - 1) ** 2
    )  # |dmu|^2 + |sqrt a - sqrt b|^2
    assert frechet_distance(mu1, torch.diag(a), mu2, torch.diag(b)) == pytest.approx(
        expected, rel=1e-12
    )


def test_fid_of_samples_with_known_gaussian_parameters():
    d = 6
    mu1, mu2 = torch.zeros(d, dtype=torch.float64), torch.linspace(-1, 1, d, dtype=torch.float64)
    s1, s2 = random_spd(d, seed=5), random_spd(d, seed=6)  # not commuting
    x, y = with_exact_moments(400, mu1, s1, seed=7), with_exact_moments(300, mu2, s2, seed=8)
    sqrt_prod = scipy.linalg.sqrtm(s1.numpy() @ s2.numpy()).real
    expected = float((mu1 - mu2) @ (mu1 - mu2)) + np.trace(s1.numpy() + s2.numpy() - 2 * sqrt_prod)
    assert fid(x, y) == pytest.approx(expected, rel=1e-9)


def test_fid_identical_and_translated_sets(rng):
    x = torch.randn(50, 8, generator=rng)
    assert fid(x, x) == pytest.approx(0.0, abs=1e-9)
    shift = torch.tensor([3.0, 0, 0, 0, 0, 0, 0, 4.0])
    assert fid(x, x + shift) == pytest.approx(25.0, rel=1e-6)
    # fewer samples than dimensions: singular covariances, still exact
    small = torch.randn(5, 32, generator=rng, dtype=torch.float64)
    assert fid(small, small) == pytest.approx(0.0, abs=1e-9)


def test_feature_statistics_match_numpy(rng):
    x = torch.randn(40, 5, generator=rng)
    mu, sigma = feature_statistics(x)
    assert mu.dtype == sigma.dtype == torch.float64
    np.testing.assert_allclose(sigma.numpy(), np.cov(x.double().numpy(), rowvar=False), rtol=1e-12)


def test_statistics_roundtrip(tmp_path, rng):
    mu, sigma = feature_statistics(torch.randn(30, 4, generator=rng))
    path = tmp_path / "digits_train.safetensors"
    save_statistics(path, mu, sigma, {"space": "digits-classifier", "n": 30})
    mu2, sigma2, meta = load_statistics(path)
    assert torch.equal(mu, mu2) and torch.equal(sigma, sigma2)
    assert meta == {"space": "digits-classifier", "n": 30}
    with pytest.raises(FileNotFoundError, match="save_statistics"):
        load_statistics(tmp_path / "missing.safetensors")


def test_bad_inputs():
    with pytest.raises(ValueError, match="at least 2 samples"):
        feature_statistics(torch.randn(1, 3))
    with pytest.raises(ValueError, match="mu1 and mu2 must be"):
        fid(torch.randn(5, 3), torch.randn(5, 4))
    with pytest.raises(ValueError, match="same shape"):
        trace_sqrt_product(torch.eye(3), torch.eye(4))
    with pytest.raises(ValueError, match="square"):
        sqrtm_psd(torch.ones(2, 3))
