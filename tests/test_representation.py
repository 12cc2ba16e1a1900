"""The learned metric as a representation: embedding, FAISS retrieval, AccuracyCalculator scores,
and `mvm embed`."""

import numpy as np
import pytest
import torch
from pytorch_metric_learning import losses
from pytorch_metric_learning.utils.accuracy_calculator import AccuracyCalculator
from safetensors.torch import load_file

from mvm_core.cli import main
from mvm_core.metric import MetricObjective
from mvm_core.metrics import faiss_available
from mvm_core.representation import (
    embed,
    metric_is_normalized,
    nearest_neighbours,
    resolve_normalize,
    retrieval_accuracy,
)

BACKENDS = ["torch", pytest.param("faiss", marks=pytest.mark.skipif(not faiss_available(), reason="no FAISS"))]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Small nets train faster on one thread; with two on a busy 2-core machine they were 10x slower."""
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


@pytest.mark.parametrize("backend", BACKENDS)
def test_nearest_neighbours_match_brute_force(backend, rng):
    x = torch.randn(300, 8, generator=rng)
    q = torch.randn(40, 8, generator=rng)
    d, idx = nearest_neighbours(x, k=5, backend=backend)
    full = torch.cdist(x.double(), x.double()).fill_diagonal_(float("inf"))
    ref_d, ref_i = full.topk(5, largest=False)
    torch.testing.assert_close(d.double(), ref_d, rtol=1e-4, atol=1e-5)
    assert (idx == ref_i).float().mean() > 0.99  # ties aside, the same rows
    assert not (idx == torch.arange(300)[:, None]).any()  # never itself
    dq, iq = nearest_neighbours(x, q, k=3, backend=backend)
    ref = torch.cdist(q.double(), x.double()).topk(3, largest=False)
    torch.testing.assert_close(dq.double(), ref.values, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="k must be an int in \\[1, 299\\]"):
        nearest_neighbours(x, k=300, backend=backend)


def test_retrieval_scores_by_hand():
    # points on a line at 0, 1, 10, 11: each one's nearest neighbour has the other label
    x = torch.tensor([[0.0], [1.0], [10.0], [11.0]])
    crossed = retrieval_accuracy(x, torch.tensor([0, 1, 0, 1]), backend="torch")
    assert crossed == {"precision_at_1": 0.0, "r_precision": 0.0, "mean_average_precision_at_r": 0.0}
    paired = retrieval_accuracy(x, torch.tensor([0, 0, 1, 1]), backend="torch")
    assert paired == {"precision_at_1": 1.0, "r_precision": 1.0, "mean_average_precision_at_r": 1.0}


def test_retrieval_agrees_with_pml_own_search(rng):
    x = torch.randn(400, 6, generator=rng)
    labels = torch.randint(0, 5, (400,), generator=rng)
    x = x + labels[:, None].float()  # some structure, many ranks
    ours = retrieval_accuracy(x, labels, backend="torch")
    pml = AccuracyCalculator(include=tuple(ours), knn_func=_brute_knn).get_accuracy(x, labels)
    for key, value in ours.items():
        assert value == pytest.approx(pml[key], abs=1e-6), key


def _brute_knn(query, k, reference, ref_includes_query):
    d = torch.cdist(query.double(), reference.double())
    if ref_includes_query:
        d.fill_diagonal_(float("inf"))
    values, idx = d.topk(k, largest=False)
    return values.float(), idx


def test_embed_batches_in_eval_mode_and_restores_it(rng):
    net = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Dropout(0.5), torch.nn.Linear(16, 3))
    x = torch.randn(50, 4, generator=rng)
    net.train()
    out = embed(net, x, batch_size=7)
    assert net.training  # restored
    net.eval()
    torch.testing.assert_close(out, net(x).detach())
    unit = embed(net, x, normalize=True)
    torch.testing.assert_close(unit.norm(dim=1), torch.ones(50))
    with pytest.raises(ValueError, match="non-empty"):
        embed(net, torch.zeros(0, 4))


def test_normalization_follows_the_metric_loss():
    assert metric_is_normalized(MetricObjective(losses.ContrastiveLoss(), miner=None))  # pml: LpDistance normalized
    assert not metric_is_normalized(MetricObjective())  # MvM triplet: squared Euclidean
    assert resolve_normalize("auto", MetricObjective()) is False
    assert resolve_normalize("yes") is True
    with pytest.raises(ValueError, match="normalize must be"):
        resolve_normalize("maybe")


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("embed") / "run"
    assert main(["train", "--data", "digits", "--steps", "20", "--width", "8", "--batch-size", "16",
                 "--log-every", "10", "--no-progress", "--device", "cpu", "--out", str(run)]) == 0
    return run


def test_mvm_embed_writes_embeddings_neighbours_and_scores(digits_run, capsys):
    out = digits_run / "e.safetensors"
    assert main(["embed", str(digits_run), "digits", "--neighbours", "5", "--evaluate", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "embedded 1797 samples of digits into 32 dimensions (L2-normalized)" in printed
    assert "precision_at_1" in printed and "mean_average_precision_at_r" in printed
    saved = load_file(str(out))
    assert saved["embeddings"].shape == (1797, 32) and saved["labels"].shape == (1797,)
    torch.testing.assert_close(saved["embeddings"].norm(dim=1), torch.ones(1797))
    assert saved["neighbours"].shape == (1797, 5)
    assert not (saved["neighbours"] == torch.arange(1797)[:, None]).any()
    assert main(["embed", str(digits_run), "digits", "--n", "100", "--normalize", "no",
                 "--out", str(digits_run / "e.npy")]) == 0
    assert np.load(digits_run / "e.npy").shape == (100, 32)


def test_mvm_embed_explains_bad_requests(digits_run, tmp_path):
    images = tmp_path / "x.npy"
    np.save(images, np.zeros((20, 1, 8, 8), dtype=np.float32))
    with pytest.raises(SystemExit, match="needs labelled data"):
        main(["embed", str(digits_run), str(images), "--evaluate", "--out", str(tmp_path / "e.npz")])
    with pytest.raises(SystemExit, match="the run's metric network takes \\(1, 8, 8\\)"):
        main(["embed", str(digits_run), "ring", "--n", "10"])
    with pytest.raises(SystemExit, match="--neighbours needs --out ending in .safetensors or .npz"):
        main(["embed", str(digits_run), "digits", "--neighbours", "3", "--out", str(tmp_path / "e.npy")])
