import math

import pytest
import torch
from pytorch_metric_learning import losses, miners
from pytorch_metric_learning.distances import CosineSimilarity

from mvm_core.metric import (
    FAKE,
    REAL,
    MetricObjective,
    MvMTripletLoss,
    RealFakeTripletMiner,
    real_fake_labels,
    restrict_to_real_fake,
)


def randn(*shape, seed=0, dtype=torch.float64):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def bf_mvm_triplet(E, a, p, n, margin, alpha, smooth=False):
    """Reference formula with explicit loops (squared distances, summed guidance)."""
    def sq(u, v):
        return sum((float(x) - float(y)) ** 2 for x, y in zip(u, v))

    def cos(u, v):
        dot = sum(float(x) * float(y) for x, y in zip(u, v))
        nu = math.sqrt(sum(float(x) ** 2 for x in u))
        nv = math.sqrt(sum(float(y) ** 2 for y in v))
        return dot / max(nu * nv, 1e-8)

    g = sum(cos(E[n[i]] - E[a[i]], E[p[i]] - E[a[i]]) for i in range(len(a)))
    out = []
    for i in range(len(a)):
        v = sq(E[a[i]], E[p[i]]) - sq(E[a[i]], E[n[i]]) + margin - alpha * g
        out.append(math.log1p(math.exp(v)) if smooth else max(v, 0.0))
    return sum(out) / len(out)


@pytest.mark.parametrize("smooth", [False, True])
def test_mvm_triplet_matches_reference_formula(smooth):
    E = randn(10, 3) * 0.5
    a = torch.tensor([0, 1, 2, 3])
    p = torch.tensor([1, 0, 3, 2])
    n = torch.tensor([7, 5, 9, 6])
    labels = real_fake_labels(5, 5)
    loss = MvMTripletLoss(margin=1.0, alpha=0.3, smooth=smooth, guidance_reduction="sum")
    got = loss(E, labels, (a, p, n)).item()
    assert got == pytest.approx(bf_mvm_triplet(E, a, p, n, 1.0, 0.3, smooth), rel=1e-10)


def test_mvm_triplet_gradcheck():
    E = randn(8, 3).requires_grad_()
    idx = (torch.tensor([0, 1, 2]), torch.tensor([1, 2, 0]), torch.tensor([5, 6, 7]))
    labels = real_fake_labels(4, 4)
    # large margin: every hinge active, so the function is smooth around E
    loss = MvMTripletLoss(margin=50.0, alpha=0.5)
    assert torch.autograd.gradcheck(lambda e: loss(e, labels, idx), (E,))


def test_mvm_triplet_with_similarity_flips_the_margin():
    E = torch.tensor([[1.0, 0.0], [0.9, 0.1], [-1.0, 0.0]])
    labels = torch.tensor([REAL, REAL, FAKE])
    idx = (torch.tensor([0]), torch.tensor([1]), torch.tensor([2]))
    cos = CosineSimilarity()
    loss = MvMTripletLoss(margin=0.1, alpha=0.0, distance=cos)
    s_ap, s_an = cos(E[:1], E[1:2]).item(), cos(E[:1], E[2:]).item()
    assert loss(E, labels, idx).item() == pytest.approx(max(s_an - s_ap + 0.1, 0), abs=1e-6)


def test_default_miner_structure_and_bound():
    n_real, n_fake = 12, 9
    E = randn(n_real + n_fake, 4, dtype=torch.float32)
    labels = real_fake_labels(n_real, n_fake)
    for k, how in [(1, "random"), (3, "random"), (4, "hardest"), (2, "easiest")]:
        miner = RealFakeTripletMiner(triplets_per_anchor=k, positives=how, negatives=how)
        a, p, n = miner(E, labels)
        assert len(a) == n_real * k  # bounded: k per real anchor
        assert (labels[a] == REAL).all() and (labels[p] == REAL).all() and (labels[n] == FAKE).all()
        assert (a != p).all()  # never the anchor itself as positive
    capped = RealFakeTripletMiner(triplets_per_anchor=3, max_triplets=5)(E, labels)
    assert len(capped[0]) == 5


def test_hardest_negative_is_the_nearest_fake():
    E = randn(10, 2, dtype=torch.float32)
    labels = real_fake_labels(4, 6)
    a, p, n = RealFakeTripletMiner(negatives="hardest")(E, labels)
    d = torch.cdist(E[:4], E[4:]) ** 2
    expected = 4 + d.argmin(dim=1)
    order = torch.argsort(a)
    assert torch.equal(n[order], expected)


def test_miner_with_ref_emb_and_no_fakes():
    real, fake = randn(5, 3, dtype=torch.float32), randn(5, 3, seed=1, dtype=torch.float32)
    labels = torch.full((5,), REAL)
    ref = torch.cat([real, fake])
    a, p, n = RealFakeTripletMiner()(real, labels, ref, real_fake_labels(5, 5))
    assert len(a) == 5 and (n >= 5).all() and (p < 5).all()
    empty = RealFakeTripletMiner()(real, labels)  # no fakes at all
    assert all(len(t) == 0 for t in empty)


def test_restrict_to_real_fake_filters_both_tuple_kinds():
    labels = torch.tensor([REAL, REAL, FAKE, FAKE])
    a, p, n = restrict_to_real_fake((torch.tensor([0, 2, 0]), torch.tensor([1, 3, 1]), torch.tensor([2, 0, 3])), labels)
    assert a.tolist() == [0, 0] and n.tolist() == [2, 3]
    a1, p1, a2, n2 = restrict_to_real_fake(
        (torch.tensor([0, 2]), torch.tensor([1, 3]), torch.tensor([0, 2]), torch.tensor([3, 0])), labels
    )
    assert a1.tolist() == [0] and a2.tolist() == [0] and n2.tolist() == [3]


SWAPPABLE = [
    lambda: MvMTripletLoss(),
    lambda: losses.TripletMarginLoss(margin=0.2),
    lambda: losses.ContrastiveLoss(),
    lambda: losses.MultiSimilarityLoss(),
    lambda: losses.CircleLoss(),
    lambda: losses.NTXentLoss(),
    lambda: losses.SupConLoss(),
    lambda: losses.LiftedStructureLoss(),
    lambda: losses.AngularLoss(),
]


@pytest.mark.parametrize("make_loss", SWAPPABLE)
def test_pml_losses_swap_behind_one_call_site(make_loss):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4))
    real, fake = torch.randn(32, 2), torch.randn(32, 2) + 1.0
    objective = MetricObjective(make_loss(), miner=RealFakeTripletMiner(triplets_per_anchor=2))
    loss = objective(net(real), net(fake))
    assert torch.isfinite(loss) and loss.item() > 0
    loss.backward()
    grads = [p.grad for p in net.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert sum(g.abs().sum().item() for g in grads) > 0  # gradients reach the metric network


def test_objective_with_another_pml_miner_keeps_mvm_structure():
    real, fake = torch.randn(16, 3), torch.randn(16, 3)
    objective = MetricObjective(losses.TripletMarginLoss(), miner=miners.BatchHardMiner())
    objective(real, fake)
    assert objective.last_stats["tuples"].item() <= 16  # fake anchors dropped


def test_objective_reports_tuple_stats():
    torch.manual_seed(0)
    real = torch.randn(20, 2) * 0.1
    far_fake = torch.randn(20, 2) * 0.1 + 10
    objective = MetricObjective(miner="random")  # the reference: one random triplet per anchor
    objective(real, far_fake)
    assert objective.last_stats["tuples"].item() == 20
    assert objective.last_stats["satisfied"].item() == 1.0


def test_default_miner_gives_the_k_nearest_fakes_of_each_real_anchor():
    from mvm_core.metric import DEFAULT_HARD_NEGATIVES
    from mvm_core.mining import FaissHardNegativeMiner

    torch.manual_seed(0)
    real, fake = torch.randn(12, 3), torch.randn(30, 3)
    objective = MetricObjective()
    assert isinstance(objective.miner, FaissHardNegativeMiner) and objective.miner.k == DEFAULT_HARD_NEGATIVES
    objective(real, fake)
    assert objective.last_stats["tuples"].item() == 12 * DEFAULT_HARD_NEGATIVES
    a, p, n = objective.miner(torch.cat([real, fake]), real_fake_labels(12, 30))
    d = torch.cdist(real, fake) ** 2  # brute force: the 8 nearest fakes of every anchor
    for anchor in range(12):
        mined = set((n[a == anchor] - 12).tolist())
        assert mined == set(d[anchor].topk(DEFAULT_HARD_NEGATIVES, largest=False).indices.tolist())
        assert (p[a == anchor] < 12).all() and (p[a == anchor] != anchor).all()


@pytest.mark.parametrize(
    "loss", [losses.ArcFaceLoss(num_classes=2, embedding_size=4), losses.ProxyAnchorLoss(2, 4)]
)
def test_classification_losses_are_rejected_at_construction(loss):
    with pytest.raises(ValueError, match="classification \\(proxy\\) loss"):
        MetricObjective(loss)


def test_self_supervised_loss_rejected_and_label_only_loss_warns():
    with pytest.raises(ValueError, match="self-supervised"):
        MetricObjective(losses.VICRegLoss())
    with pytest.warns(UserWarning, match="ignores mined tuples"):
        MetricObjective(losses.InstanceLoss())
    with pytest.raises(TypeError, match="pytorch-metric-learning loss object"):
        MetricObjective("TripletMarginLoss")


def test_objective_bad_input():
    objective = MetricObjective()
    with pytest.raises(ValueError, match="same embedding size"):
        objective(torch.randn(4, 3), torch.randn(4, 2))
    with pytest.raises(ValueError, match="fake_emb contains NaN"):
        objective(torch.randn(4, 3), torch.full((4, 3), float("inf")))
    with pytest.raises(ValueError, match="triplets_per_anchor must be a positive int"):
        RealFakeTripletMiner(triplets_per_anchor="all")


def test_guidance_mean_reduction_divides_by_the_number_of_triplets():
    E = randn(10, 3) * 0.5
    idx = (torch.tensor([0, 1, 2, 3]), torch.tensor([1, 0, 3, 2]), torch.tensor([7, 5, 9, 6]))
    labels = real_fake_labels(5, 5)
    summed = MvMTripletLoss(margin=50.0, alpha=0.4, guidance_reduction="sum")(E, labels, idx).item()
    mean = MvMTripletLoss(margin=50.0, alpha=0.4 * 4, guidance_reduction="mean")(E, labels, idx).item()
    assert mean == pytest.approx(summed, rel=1e-12)  # alpha * sum == (4 alpha) * mean for 4 triplets
    with pytest.raises(ValueError, match="guidance_reduction must be"):
        MvMTripletLoss(guidance_reduction="max")


def _metric_activity(trainer, steps):
    """Share of steps with a non-zero metric loss, and how far M's weights moved."""
    before = [p.detach().clone() for p in trainer.metric_net.parameters()]
    history = trainer.fit(steps)
    active = sum(r["loss_m"] > 0 for r in history) / len(history)
    moved = max(float((p.detach() - q).abs().max()) for p, q in zip(trainer.metric_net.parameters(), before))
    return active, moved


@pytest.mark.parametrize("batch_size", [64, 256])
def test_the_default_metric_objective_learns_at_realistic_batch_sizes(batch_size):
    # the published batch-summed guidance passes the margin here: loss 0, weights frozen
    from mvm_core.data import digits_dataset
    from mvm_core.nets import DCGANGenerator, DCGANMetricNet
    from mvm_core.trainer import Trainer

    def trainer(objective):
        torch.manual_seed(0)
        return Trainer(DCGANGenerator(16, 8, 1, 16), DCGANMetricNet(8, 1, 10, 16), digits_dataset(8),
                       {"steps": 30, "batch_size": batch_size, "log_every": 1},
                       metric_objective=objective)

    active, moved = _metric_activity(trainer(MetricObjective()), 30)
    assert active >= 0.9 and moved > 1e-3
    summed = MetricObjective(MvMTripletLoss(guidance_reduction="sum"))
    active, moved = _metric_activity(trainer(summed), 30)
    assert active == 0.0 and moved == 0.0  # what the default fixes


@pytest.mark.parametrize("data", ["digits"])  # the points default keeps the published sum
@pytest.mark.parametrize("batch_size", [64, 256])
def test_every_default_preset_metric_learns(data, batch_size):
    from mvm_core.build import build_trainer
    from mvm_core.runconfig import build_run_config

    config = build_run_config({}, {"data": data, "batch_size": batch_size, "steps": 20,
                                   "width": 32, "log_every": 1})
    active, moved = _metric_activity(build_trainer(config), 20)
    assert active >= 0.9, active
    assert moved > 1e-4
