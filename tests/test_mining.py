"""FAISS hard-negative miner and fake-embedding bank: exactness against brute force (float64),
tuple structure, ring buffer, stale entries, distances, approximate indexes, torch fallback."""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from pytorch_metric_learning import losses
from pytorch_metric_learning.distances import CosineSimilarity, DotProductSimilarity, LpDistance

from mvm_core import mining
from mvm_core.matching import squared_euclidean
from mvm_core.metric import FAKE, REAL, real_fake_labels
from mvm_core.mining import FaissHardNegativeMiner, FakeEmbeddingBank, chunked_knn

HAVE_FAISS = mining.faiss_available()
needs_faiss = pytest.mark.skipif(not HAVE_FAISS, reason="FAISS is not installed")
BACKENDS = [pytest.param("faiss", marks=needs_faiss), "torch"]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    if HAVE_FAISS:
        import faiss

        faiss.omp_set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def no_faiss(monkeypatch):
    """Simulate an environment without FAISS."""

    def missing():
        raise ImportError("No module named 'faiss'")

    monkeypatch.setattr(mining, "_import_faiss", missing)


DISTANCES = {
    "sq_l2": squared_euclidean,
    "l2_normalized": lambda: LpDistance(normalize_embeddings=True),
    "cosine": CosineSimilarity,
    "dot": lambda: DotProductSimilarity(normalize_embeddings=False),
}


def brute_nearest(query, base, k, distance_name):
    """float64 reference: indices of the k nearest rows of base (by distance or similarity)."""
    q, b = query.double(), base.double()
    if distance_name in ("l2_normalized", "cosine"):
        q, b = torch.nn.functional.normalize(q, dim=1), torch.nn.functional.normalize(b, dim=1)
    if distance_name in ("cosine", "dot"):
        return (q @ b.T).topk(k, dim=1).indices
    return torch.cdist(q, b).topk(k, dim=1, largest=False).indices


def batch(n_real, n_fake, d, seed):
    g = torch.Generator().manual_seed(seed)
    real, fake = torch.randn(n_real, d, generator=g), torch.randn(n_fake, d, generator=g)
    return torch.cat([real, fake]), real_fake_labels(n_real, n_fake)


def per_anchor(a, n, n_anchor, k):
    """(n_anchor, k) negatives grouped by anchor (triplets come anchor by anchor)."""
    order = torch.argsort(a, stable=True)
    assert torch.equal(a[order], torch.arange(n_anchor).repeat_interleave(k))
    return n[order].view(n_anchor, k)


# ------------------------------------------------------------------------------------------------
# exactness and structure


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", list(DISTANCES))
def test_in_batch_negatives_are_the_brute_force_k_nearest(backend, name):
    emb, labels = batch(20, 50, 16, seed=1)
    k = 5
    miner = FaissHardNegativeMiner(k=k, distance=DISTANCES[name](), backend=backend)
    a, p, n = miner(emb, labels)
    assert len(a) == 20 * k
    expected = brute_nearest(emb[:20], emb[20:], k, name) + 20
    got = per_anchor(a, n, 20, k)
    assert torch.equal(got.sort(1).values, expected.sort(1).values)
    # structure: real anchors, real positives other than the anchor, fake negatives
    assert (labels[a] == REAL).all() and (labels[p] == REAL).all() and (labels[n] == FAKE).all()
    assert (a != p).all()


def test_cosine_and_l2_rank_differently_and_each_matches_its_distance():
    # fakes on one ray at growing norms: cosine sees them all as equally near, L2 does not
    real = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    fake = torch.tensor([[3.0, 0.1], [1.1, 0.0], [-1.0, 0.0], [0.2, 4.0]])
    emb, labels = torch.cat([real, fake]), real_fake_labels(2, 4)
    _, _, n_l2 = FaissHardNegativeMiner(k=1)(emb, labels)
    _, _, n_cos = FaissHardNegativeMiner(k=1, distance=CosineSimilarity())(emb, labels)
    # L2: [1,0] -> [1.1,0]; [0,1] -> [-1,0] (distance sqrt 2 < ||[0.2,3]||)
    assert n_l2.tolist() == [2 + 1, 2 + 2]
    # cosine: [1,0] -> [1.1,0] (cos 1); [0,1] -> [0.2,4] (cos 0.9988)
    assert n_cos.tolist() == [2 + 1, 2 + 3]


def test_hardest_positives_are_the_farthest_reals_excluding_the_anchor():
    emb, labels = batch(12, 30, 8, seed=2)
    k = 4
    miner = FaissHardNegativeMiner(k=k, positives="hardest")
    a, p, n = miner(emb, labels)
    real = emb[:12].double()
    d = torch.cdist(real, real)
    d.fill_diagonal_(-1)  # never the anchor itself
    farthest = d.topk(k, dim=1).indices
    order = torch.argsort(a, stable=True)
    got_p = p[order].view(12, k)
    assert torch.equal(got_p.sort(1).values, farthest.sort(1).values)
    # the i-th nearest negative is paired with the i-th farthest positive
    d_an = ((emb[a] - emb[n]) ** 2).sum(1)[order].view(12, k)
    d_ap = ((emb[a] - emb[p]) ** 2).sum(1)[order].view(12, k)
    assert (d_an.argsort(1) == d_ap.argsort(1, descending=True)).all()


def test_random_positives_never_the_anchor_and_cycle_when_few_reals():
    emb, labels = batch(2, 10, 4, seed=3)  # one possible positive per anchor
    a, p, n = FaissHardNegativeMiner(k=3)(emb, labels)
    assert len(a) == 6
    assert torch.equal(p, 1 - a)
    hard = FaissHardNegativeMiner(k=3, positives="hardest")
    a, p, n = hard(emb, labels)
    assert torch.equal(p, 1 - a)


def test_max_triplets_caps_the_output():
    emb, labels = batch(30, 30, 8, seed=4)
    a, p, n = FaissHardNegativeMiner(k=8, max_triplets=50)(emb, labels)
    assert len(a) == len(p) == len(n) == 50
    a, _, _ = FaissHardNegativeMiner(k=8)(emb, labels)
    assert len(a) == 30 * 8


def test_fewer_fakes_than_k_and_degenerate_batches():
    emb, labels = batch(5, 3, 4, seed=5)
    a, p, n = FaissHardNegativeMiner(k=8)(emb, labels)
    assert len(a) == 5 * 3 and set(n.tolist()) == {5, 6, 7}
    only_real = emb[:5], torch.zeros(5, dtype=torch.long)
    assert all(len(t) == 0 for t in FaissHardNegativeMiner(k=2)(*only_real))
    one_real = emb[4:], labels[4:]  # one real: no positive
    assert all(len(t) == 0 for t in FaissHardNegativeMiner(k=2)(*one_real))


# ------------------------------------------------------------------------------------------------
# the bank


def test_bank_ring_buffer_wraps_around_and_stamps_steps():
    bank = FakeEmbeddingBank(capacity=10, max_age=None)
    rows = torch.arange(12 * 2, dtype=torch.float32).view(12, 2)
    for s in range(3):
        bank.enqueue(rows[4 * s : 4 * s + 4])
    assert len(bank) == 10 and bank.step == 3 and bank.head == 2
    # rows 0..3 (step 0) were overwritten in slots 0, 1 by rows 10, 11
    assert torch.equal(bank.embeddings[:2], rows[10:12])
    assert torch.equal(bank.embeddings[2:10], rows[2:10])
    assert bank.steps.tolist() == [2, 2, 0, 0, 1, 1, 1, 1, 2, 2]
    assert bank.ages().tolist() == [1, 1, 3, 3, 2, 2, 2, 2, 1, 1]
    # a batch larger than the bank keeps its last `capacity` rows
    big = torch.arange(30, dtype=torch.float32).view(15, 2) + 100
    bank.enqueue(big, step=7)
    assert bank.step == 8 and set(bank.embeddings[:, 0].tolist()) == set(big[5:, 0].tolist())


def test_bank_checks_its_inputs():
    with pytest.raises(ValueError, match="capacity must be a positive int"):
        FakeEmbeddingBank(0)
    with pytest.raises(ValueError, match="max_age"):
        FakeEmbeddingBank(10, max_age=0)
    with pytest.raises(ValueError, match="needs max_age"):
        FakeEmbeddingBank(10, max_age=None, stale="reembed")
    bank = FakeEmbeddingBank(10)
    bank.enqueue(torch.zeros(2, 3), step=5)
    with pytest.raises(ValueError, match="size 4 but the bank holds size 3"):
        bank.enqueue(torch.zeros(2, 4))
    with pytest.raises(ValueError, match="steps must not decrease"):
        bank.set_step(2)
    with pytest.raises(ValueError, match=r"\(B, d\) tensor"):
        bank.enqueue(torch.zeros(3))


def test_stale_entries_are_dropped_even_when_nearest():
    bank = FakeEmbeddingBank(capacity=100, max_age=2)
    miner = FaissHardNegativeMiner(k=1, bank=bank, source="bank")
    anchor = torch.tensor([[0.0, 0.0], [0.1, 0.0]])
    labels = torch.tensor([REAL, REAL])
    bank.enqueue(torch.tensor([[0.0, 0.0]]))  # step 0: exactly at the anchor
    bank.enqueue(torch.tensor([[5.0, 0.0]]))  # step 1
    bank.enqueue(torch.tensor([[9.0, 0.0]]))  # step 2
    # mining at step 3: step 0 has age 3 > max_age
    assert bank.valid_mask()[:3].tolist() == [False, True, True]
    (a, p, n), ref, ref_labels = miner.mine_with_reference(anchor, labels)
    assert torch.equal(ref[n], torch.tensor([[5.0, 0.0], [5.0, 0.0]]))
    # with max_age=None the same bank row is the nearest
    bank.max_age = None
    (a, p, n), ref, _ = miner.mine_with_reference(anchor, labels)
    assert torch.equal(ref[n], torch.zeros(2, 2))
    # everything stale: no negatives at all
    bank.max_age = 1
    bank.set_step(10)
    (a, p, n), _, _ = miner.mine_with_reference(anchor, labels)
    assert len(a) == 0


def test_stale_entries_are_reembedded_with_reembed_policy():
    calls = []

    def embed(samples):  # the "current metric network": doubles the samples
        calls.append(len(samples))
        return 2 * samples

    bank = FakeEmbeddingBank(
        capacity=8, max_age=2, stale="reembed", reembed_fn=embed, reembed_batch_size=3
    )
    x = torch.arange(8, dtype=torch.float32).view(4, 2)
    with pytest.raises(ValueError, match="needs the generated samples"):
        bank.enqueue(x[:2])
    bank.enqueue(x[:2], samples=x[:2])  # step 0: embeddings equal samples
    bank.enqueue(x[2:], samples=x[2:])  # step 1
    bank.set_step(3)  # step-0 rows have age 3
    assert bank.refresh() == 2
    assert torch.equal(bank.embeddings[:2], 2 * x[:2]) and torch.equal(bank.embeddings[2:4], x[2:])
    assert bank.steps[:4].tolist() == [3, 3, 1, 1] and calls == [2]
    assert bank.valid_mask()[:4].all()
    bank.reembed_fn = None
    bank.set_step(4)
    with pytest.raises(RuntimeError, match="reembed_fn is not set"):
        bank.refresh()
    # a miner refreshes before searching
    bank.reembed_fn = embed
    miner = FaissHardNegativeMiner(k=1, bank=bank, source="bank")
    (_, _, n), ref, _ = miner.mine_with_reference(
        torch.tensor([[4.0, 5.0], [0.0, 0.0]]), torch.tensor([REAL, REAL])
    )
    assert torch.equal(ref[n[0]], torch.tensor([4.0, 6.0]))  # re-embedded [2, 3]
    assert bank.steps[:4].tolist() == [3, 3, 4, 4]


@pytest.mark.parametrize("source", ["bank", "both"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_bank_negatives_are_the_brute_force_k_nearest_live_rows(source, backend):
    g = torch.Generator().manual_seed(6)
    bank = FakeEmbeddingBank(capacity=300, max_age=3)
    miner = FaissHardNegativeMiner(k=6, bank=bank, source=source, backend=backend)
    history = [torch.randn(70, 16, generator=g) for _ in range(6)]
    for h in history:
        bank.enqueue(h)
    # live at step 6: steps 3, 4, 5 (210 rows; steps 0-2 were dropped or overwritten)
    live = torch.cat(history[3:])
    emb, labels = batch(15, 40, 16, seed=7)
    (a, p, n), ref_emb, ref_labels = miner.mine_with_reference(emb, labels)
    pool = live if source == "bank" else torch.cat([emb[15:], live])
    expected = pool[brute_nearest(emb[:15], pool, 6, "sq_l2")]
    got = ref_emb[per_anchor(a, n, 15, 6)]
    for i in range(15):  # same sets of vectors (row order within a set does not matter)
        assert torch.equal(got[i][got[i][:, 0].argsort()], expected[i][expected[i][:, 0].argsort()])
    # the reference set: the batch, then each bank row used once, labelled FAKE
    assert torch.equal(ref_emb[: len(emb)], emb) and torch.equal(ref_labels[: len(emb)], labels)
    extra = ref_emb[len(emb) :]
    assert len(extra) == len(torch.unique(extra, dim=0)) and (ref_labels[len(emb) :] == FAKE).all()
    assert set(n[n >= len(emb)].tolist()) == set(range(len(emb), len(ref_emb)))
    assert miner.num_bank_negatives == int((n >= len(emb)).sum()) > 0


def test_reference_set_carries_gradients_to_the_batch_only():
    bank = FakeEmbeddingBank(64)
    miner = FaissHardNegativeMiner(k=2, bank=bank)
    bank.enqueue(torch.randn(64, 4))
    emb, labels = batch(6, 6, 4, seed=8)
    emb.requires_grad_(True)
    indices, ref_emb, ref_labels = miner.mine_with_reference(emb, labels)
    loss = losses.TripletMarginLoss()(emb, labels, indices, ref_emb, ref_labels)
    loss.backward()
    assert emb.grad is not None and emb.grad.abs().sum() > 0
    assert not bank.embeddings.requires_grad


def test_max_triplets_renumbers_bank_rows():
    bank = FakeEmbeddingBank(500, max_age=None)
    bank.enqueue(torch.randn(500, 8, generator=torch.Generator().manual_seed(9)))
    miner = FaissHardNegativeMiner(k=8, bank=bank, source="bank", max_triplets=7)
    emb, labels = batch(40, 0, 8, seed=10)
    (a, p, n), ref_emb, _ = miner.mine_with_reference(emb, labels)
    assert len(a) == 7
    # every appended row is used and is a real bank row
    assert set(n.tolist()) == set(range(40, len(ref_emb)))
    for row in ref_emb[40:]:
        assert (bank.embeddings == row).all(1).any()


# ------------------------------------------------------------------------------------------------
# approximate indexes


def clustered(n, d, g, centers):
    c = torch.randint(0, len(centers), (n,), generator=g)
    return centers[c] + 0.05 * torch.randn(n, d, generator=g)


@needs_faiss
@pytest.mark.parametrize("index", ["ivf", "hnsw"])
def test_approximate_index_recall_and_live_rows_only(index):
    g = torch.Generator().manual_seed(11)
    d = 16
    centers = 3 * torch.randn(40, d, generator=g)
    bank = FakeEmbeddingBank(4000, max_age=None)
    miner = FaissHardNegativeMiner(k=8, bank=bank, source="bank", index=index)
    exact = FaissHardNegativeMiner(k=8, bank=bank, source="bank")
    for _ in range(4):
        bank.enqueue(clustered(1000, d, g, centers))
    emb = clustered(200, d, g, centers)
    labels = torch.zeros(200, dtype=torch.long)

    def negatives(m):
        (a, p, n), ref, _ = m.mine_with_reference(emb, labels)
        return ref[per_anchor(a, n, 200, 8)]

    approx_rows, exact_rows = negatives(miner), negatives(exact)
    assert miner.approximate_search == 1 and exact.approximate_search == 0
    hits = sum(
        (approx_rows[i][:, None, :] == exact_rows[i][None, :, :]).all(-1).any(1).sum().item()
        for i in range(200)
    )
    assert hits / (200 * 8) >= 0.9
    assert miner.bank_recall(emb) == pytest.approx(hits / (200 * 8))
    assert exact.bank_recall(emb) == 1.0
    # incremental update: new rows at the anchors are found at once, overwritten ones never
    decoys = emb[:10] + 1e-3
    bank.enqueue(decoys)
    (a, p, n), ref, _ = miner.mine_with_reference(emb[:10], labels[:10])
    got = ref[per_anchor(a, n, 10, 8)]
    assert all((got[i] == decoys[i]).all(1).any() for i in range(10))
    bank.enqueue(clustered(4000, d, g, centers))  # overwrites everything, decoys included
    (a, p, n), ref, _ = miner.mine_with_reference(emb[:10], labels[:10])
    got = ref[per_anchor(a, n, 10, 8)]
    assert not any((got[i] == decoys[i]).all(1).any() for i in range(10))
    for row in ref[10:]:
        assert (bank.embeddings == row).all(1).any()


@needs_faiss
def test_ivf_index_rebuilds_when_the_bank_turns_over():
    g = torch.Generator().manual_seed(12)
    bank = FakeEmbeddingBank(2000, max_age=None)
    miner = FaissHardNegativeMiner(k=2, bank=bank, source="bank", index="ivf")
    query, labels = torch.randn(4, 8, generator=g), torch.zeros(4, dtype=torch.long)
    bank.enqueue(torch.randn(2000, 8, generator=g))
    miner.mine_with_reference(query, labels)
    assert miner._approx.builds == 1 and miner._approx.index.ntotal == 2000
    for _ in range(3):  # 1500 new rows: appended, old ids hidden
        bank.enqueue(torch.randn(500, 8, generator=g))
        miner.mine_with_reference(query, labels)
    assert miner._approx.builds == 1 and miner._approx.index.ntotal == 3500
    bank.enqueue(torch.randn(600, 8, generator=g))  # 4100 ids > 2 x 2000 live: rebuild
    miner.mine_with_reference(query, labels)
    assert miner._approx.builds == 2 and miner._approx.index.ntotal == 2000


@needs_faiss
def test_auto_index_switches_to_ivf_above_the_threshold():
    g = torch.Generator().manual_seed(13)
    bank = FakeEmbeddingBank(3000, max_age=None)
    miner = FaissHardNegativeMiner(
        k=2, bank=bank, source="bank", index="auto", approximate_above=2500
    )
    query, labels = torch.randn(4, 8, generator=g), torch.zeros(4, dtype=torch.long)
    bank.enqueue(torch.randn(2000, 8, generator=g))
    miner.mine_with_reference(query, labels)
    assert miner.approximate_search == 0
    bank.enqueue(torch.randn(1000, 8, generator=g))
    miner.mine_with_reference(query, labels)
    assert miner.approximate_search == 1


# ------------------------------------------------------------------------------------------------
# torch fallback, chunking, lazy FAISS


@needs_faiss
@pytest.mark.parametrize("name", ["sq_l2", "cosine"])
def test_torch_fallback_equals_faiss_when_faiss_is_missing(no_faiss, monkeypatch, name):
    emb, labels = batch(25, 60, 12, seed=14)
    bank_rows = torch.randn(400, 12, generator=torch.Generator().manual_seed(15))
    fallback = FaissHardNegativeMiner(
        k=5, bank=FakeEmbeddingBank(400), distance=DISTANCES[name](), chunk_elements=97
    )
    assert fallback.backend == "torch"
    fallback.enqueue(bank_rows)
    torch.manual_seed(0)
    out_torch = fallback.mine_with_reference(emb, labels)
    monkeypatch.undo()
    with_faiss = FaissHardNegativeMiner(
        k=5, bank=FakeEmbeddingBank(400), distance=DISTANCES[name]()
    )
    assert with_faiss.backend == "faiss"
    with_faiss.enqueue(bank_rows)
    torch.manual_seed(0)
    out_faiss = with_faiss.mine_with_reference(emb, labels)
    (a1, p1, n1), ref1, _ = out_torch
    (a2, p2, n2), ref2, _ = out_faiss
    assert torch.equal(a1, a2) and torch.equal(p1, p2)
    assert torch.equal(ref1[n1], ref2[n2])


def test_faiss_only_features_fail_at_construction_without_faiss(no_faiss):
    assert not mining.faiss_available()
    for kwargs in (
        {"index": "ivf", "bank": 10},
        {"index": "hnsw", "bank": 10},
        {"backend": "faiss"},
    ):
        with pytest.raises(ImportError, match="pip install faiss-cpu"):
            FaissHardNegativeMiner(**kwargs)


@pytest.mark.parametrize("farthest", [False, True])
def test_chunked_knn_equals_the_full_matrix(farthest):
    g = torch.Generator().manual_seed(16)
    q, b = (
        torch.randn(37, 5, generator=g, dtype=torch.float64),
        torch.randn(101, 5, generator=g, dtype=torch.float64),
    )
    exclude = torch.randint(-1, 101, (37,), generator=g)
    values, idx = chunked_knn(
        q, b, 7, squared_euclidean(), farthest=farthest, exclude=exclude, chunk_elements=50
    )  # blocks of a few pairs: many merges
    full = torch.cdist(q, b) ** 2
    full[torch.arange(37)[exclude >= 0], exclude[exclude >= 0]] = -1 if farthest else float("inf")
    ref = full.topk(7, dim=1, largest=farthest)
    assert torch.equal(idx, ref.indices)
    assert torch.allclose(values, ref.values)


def test_chunked_knn_with_a_similarity_and_too_few_rows():
    q = torch.tensor([[1.0, 0.0]])
    b = torch.tensor([[0.0, 1.0], [2.0, 0.0], [-1.0, 0.0]])
    values, idx = chunked_knn(q, b, 5, DotProductSimilarity(normalize_embeddings=False))
    assert idx.tolist() == [[1, 0, 2]] and values.tolist() == [[2.0, 0.0, -1.0]]
    values, idx = chunked_knn(q, b, 3, squared_euclidean(), exclude=torch.tensor([1]))
    assert idx.tolist() == [[0, 2, -1]]


# ------------------------------------------------------------------------------------------------
# errors


def test_miner_rejects_bad_arguments_with_the_fix():
    with pytest.raises(ValueError, match="k must be a positive int"):
        FaissHardNegativeMiner(k=0)
    with pytest.raises(ValueError, match="positives must be 'random' or 'hardest'"):
        FaissHardNegativeMiner(positives="easiest")
    with pytest.raises(ValueError, match="bank is None"):
        FaissHardNegativeMiner(source="bank")
    with pytest.raises(ValueError, match="over the memory bank"):
        FaissHardNegativeMiner(index="ivf")
    if HAVE_FAISS:
        with pytest.raises(ValueError, match="LpDistance\\(p=2\\)"):
            FaissHardNegativeMiner(index="ivf", bank=10, distance=LpDistance(p=1))
    with pytest.raises(TypeError, match="FakeEmbeddingBank, an int"):
        FaissHardNegativeMiner(bank="big")
    emb, _ = batch(3, 3, 2, seed=0)
    with pytest.raises(ValueError, match=r"REAL \(0\) or FAKE \(1\)"):
        FaissHardNegativeMiner()(emb, torch.tensor([0, 1, 2, 0, 1, 1]))
    with pytest.raises(RuntimeError, match="mine_with_reference"):
        FaissHardNegativeMiner(bank=10)(emb, torch.tensor([0, 0, 0, 1, 1, 1]))


def test_other_pml_distances_use_the_torch_search():
    emb, labels = batch(6, 10, 3, seed=17)
    miner = FaissHardNegativeMiner(k=2, distance=LpDistance(p=1, normalize_embeddings=False))
    assert miner.backend == "torch"
    a, p, n = miner(emb, labels)
    expected = torch.cdist(emb[:6], emb[6:], p=1).topk(2, largest=False).indices + 6
    assert torch.equal(per_anchor(a, n, 6, 2).sort(1).values, expected.sort(1).values)


# ------------------------------------------------------------------------------------------------
# pml wrappers


def test_cross_batch_memory_with_the_miner_mines_fakes_in_memory():
    g = torch.Generator().manual_seed(18)
    miner = FaissHardNegativeMiner(k=3)
    xbm = losses.CrossBatchMemory(
        losses.TripletMarginLoss(), embedding_size=8, memory_size=64, miner=miner
    )
    for _ in range(3):
        emb, labels = torch.randn(16, 8, generator=g), real_fake_labels(8, 8)
        loss = xbm(emb, labels)
    assert loss > 0 and miner.num_triplets > 0
    # the pitfall: enqueueing only the fakes makes the reals the anchors with a memory of fakes
    # only: no real positive exists, so there are no triplets and the loss is zero
    xbm_fakes = losses.CrossBatchMemory(
        losses.TripletMarginLoss(),
        embedding_size=8,
        memory_size=64,
        miner=FaissHardNegativeMiner(k=3),
    )
    emb, labels = torch.randn(16, 8, generator=g), real_fake_labels(8, 8)
    loss = xbm_fakes(emb, labels, enqueue_mask=labels == FAKE)
    assert float(loss) == 0.0 and xbm_fakes.miner.num_triplets == 0


def _ddp_worker(rank, port, result_file):
    os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = "127.0.0.1", str(port)
    torch.distributed.init_process_group("gloo", rank=rank, world_size=2)
    try:
        from pytorch_metric_learning.utils import distributed as pml_dist

        torch.set_num_threads(1)
        g = torch.Generator().manual_seed(100 + rank)
        emb, labels = torch.randn(12, 6, generator=g), real_fake_labels(6, 6)
        miner = pml_dist.DistributedMinerWrapper(FaissHardNegativeMiner(k=4), efficient=True)
        a, p, n = miner(emb, labels)
        everyone = [torch.empty_like(emb) for _ in range(2)]
        torch.distributed.all_gather(everyone, emb)
        # the gathered reference set: this rank's batch first, then the other rank's
        ref = torch.cat([everyone[rank], everyone[1 - rank]])
        ref_labels = torch.cat([labels, labels])
        fakes = torch.nonzero(ref_labels == FAKE)[:, 0]
        d = torch.cdist(emb[:6].double(), ref[fakes].double())
        expected = fakes[d.topk(4, largest=False).indices]
        ok = torch.equal(per_anchor(a, n, 6, 4).sort(1).values, expected.sort(1).values)
        ok &= bool((a != p).all()) and bool((ref_labels[p] == REAL).all())
        loss = pml_dist.DistributedLossWrapper(losses.TripletMarginLoss(), efficient=True)
        value = loss(emb.requires_grad_(True), labels, (a, p, n))
        ok &= bool(torch.isfinite(value))
        with open(f"{result_file}.{rank}", "w") as f:
            f.write("ok" if ok else "mismatch")
    finally:
        torch.distributed.destroy_process_group()


def test_distributed_miner_wrapper_two_processes(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = str(tmp_path / "rank")
    # fork: the workers inherit the imported modules (spawn would re-import torch: ~20 s)
    mp.start_processes(_ddp_worker, args=(port, result), nprocs=2, join=True, start_method="fork")
    assert [open(f"{result}.{r}").read() for r in range(2)] == ["ok", "ok"]


def test_the_examples_in_docs_mining_run():
    doc = Path(__file__).resolve().parents[1] / "docs" / "mining.md"
    blocks = re.findall(r"```python\n(.*?)```", doc.read_text(), flags=re.S)
    assert len(blocks) >= 2
    namespace: dict = {}
    for block in blocks:  # the blocks continue one another
        exec(compile(block, str(doc), "exec"), namespace)
    assert namespace["value"].ndim == 0
