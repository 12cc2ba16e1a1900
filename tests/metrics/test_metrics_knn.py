import pytest
import torch

import mvm_core.metrics.neighbours as knn_module
from mvm_core.metrics.neighbours import knn, kth_neighbour_distance, squared_distances


def brute_knn(query, reference, k, exclude_self=False):
    d = torch.cdist(query.double(), reference.double())
    if exclude_self:
        d.fill_diagonal_(float("inf"))
    return torch.topk(d, k, dim=1, largest=False)


@pytest.mark.parametrize("backend", ["faiss", "torch"])
def test_knn_matches_brute_force(backend, rng):
    query, reference = torch.randn(300, 16, generator=rng), torch.randn(500, 16, generator=rng)
    dist, idx = knn(query, reference, 5, backend=backend)
    ref_d, ref_i = brute_knn(query, reference, 5)
    assert dist.shape == idx.shape == (300, 5)
    torch.testing.assert_close(dist, ref_d, rtol=1e-12, atol=1e-12)
    assert torch.equal(idx, ref_i)


@pytest.mark.parametrize("backend", ["faiss", "torch"])
def test_exclude_self_matches_brute_force(backend, rng):
    x = torch.randn(200, 8, generator=rng)
    dist, idx = knn(x, None, 3, exclude_self=True, backend=backend)
    ref_d, ref_i = brute_knn(x, x, 3, exclude_self=True)
    torch.testing.assert_close(dist, ref_d, rtol=1e-12, atol=1e-12)
    assert torch.equal(idx, ref_i)
    torch.testing.assert_close(
        kth_neighbour_distance(x, 3, backend=backend), ref_d[:, -1], rtol=1e-12, atol=1e-12
    )


@pytest.mark.parametrize("backend", ["faiss", "torch"])
def test_exclude_self_with_duplicates_never_returns_self(backend):
    x = torch.tensor([[0.0, 0.0], [0.0, 0.0], [0.0, 0.0], [5.0, 0.0]])
    dist, idx = knn(x, None, 2, exclude_self=True, backend=backend)
    assert not (idx == torch.arange(4)[:, None]).any()
    # the three duplicates see each other at distance 0; the far point sees two duplicates at 5
    torch.testing.assert_close(dist[:3], torch.zeros(3, 2, dtype=torch.float64))
    torch.testing.assert_close(dist[3], torch.tensor([5.0, 5.0], dtype=torch.float64))


def test_torch_chunks_give_the_same_answer(rng):
    query, reference = torch.randn(97, 4, generator=rng), torch.randn(53, 4, generator=rng)
    full = knn(query, reference, 4, backend="torch")
    chunked = knn(query, reference, 4, backend="torch", block_elements=60)  # one row per block
    torch.testing.assert_close(full[0], chunked[0])
    assert torch.equal(full[1], chunked[1])


def test_exact_rerank_fixes_float32_cancellation():
    """Large norms, tiny differences: float32 expansion cannot rank these; the result is exact."""
    base = torch.full((1, 4), 1000.0, dtype=torch.float64)
    offsets = torch.tensor([[3e-3, 0, 0, 0], [1e-3, 0, 0, 0], [2e-3, 0, 0, 0]], dtype=torch.float64)
    dist, idx = knn(base, base + offsets, 3)
    assert idx.tolist() == [[1, 2, 0]]
    torch.testing.assert_close(dist, torch.tensor([[1e-3, 2e-3, 3e-3]], dtype=torch.float64))


def test_squared_distances_hand_checked():
    x = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
    y = torch.tensor([[0.0, 0.0], [1.0, 0.0]])
    torch.testing.assert_close(squared_distances(x, y), torch.tensor([[0.0, 1.0], [25.0, 20.0]]))


def test_fallback_without_faiss(monkeypatch, rng):
    monkeypatch.setattr(knn_module, "faiss_available", lambda: False)
    x = torch.randn(50, 3, generator=rng)
    dist, idx = knn(x, x, 1)  # auto -> torch
    assert torch.equal(dist[:, 0], torch.zeros(50, dtype=torch.float64))  # exact self-distance
    assert torch.equal(idx[:, 0], torch.arange(50))
    with pytest.raises(ModuleNotFoundError, match="pip install faiss-cpu"):
        knn(x, x, 1, backend="faiss")


def test_bad_arguments(rng):
    x = torch.randn(10, 3, generator=rng)
    with pytest.raises(ValueError, match=r"k must be an int in \[1, 9\]"):
        knn(x, None, 10, exclude_self=True)
    with pytest.raises(ValueError, match="same embedding size"):
        knn(x, torch.randn(5, 4), 1)
    with pytest.raises(ValueError, match="backend must be one of"):
        knn(x, x, 1, backend="annoy")
    with pytest.raises(ValueError, match="query set to be the reference set"):
        knn(x, x[:5], 1, exclude_self=True)
