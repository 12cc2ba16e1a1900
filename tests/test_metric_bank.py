"""MetricObjective with a miner that brings a reference set (the FAISS miner's memory bank):
hand-checked losses for several pml losses, the bank filled after mining, steps and staleness."""

from __future__ import annotations

import math

import pytest
import torch
from pytorch_metric_learning import losses
from pytorch_metric_learning.distances import LpDistance
from pytorch_metric_learning.miners import BaseMiner

from mvm_core.metric import FAKE, REAL, MetricObjective, MvMTripletLoss, real_fake_labels
from mvm_core.mining import FaissHardNegativeMiner, FakeEmbeddingBank, ReferenceMiner

# two reals one unit apart; the generated sample of the previous step (now in the bank) sits
# between them, the one of this step far away: only the bank holds a hard negative
REAL_EMB = torch.tensor([[0.0, 0.0], [1.0, 0.0]])
PREVIOUS_FAKE = torch.tensor([[0.5, 0.0]])
FAKE_EMB = torch.tensor([[5.0, 0.0]])
L2 = LpDistance(normalize_embeddings=False)  # plain Euclidean distance


def two_steps(loss, source="both", real=REAL_EMB, previous=PREVIOUS_FAKE, fake=FAKE_EMB):
    """Step 0 fills the bank with `previous`; returns (objective, loss of step 1)."""
    miner = FaissHardNegativeMiner(k=1, bank=FakeEmbeddingBank(16), source=source)
    objective = MetricObjective(loss, miner=miner)
    objective(real, previous)
    if source == "batch":
        miner.bank.reset()
    return objective, objective(real.clone().requires_grad_(True), fake)


def test_triplet_margin_loss_sees_the_bank_negative():
    loss = losses.TripletMarginLoss(margin=0.5, distance=L2)
    # each anchor: positive = the other real (d = 1), negative = the bank fake (d = 0.5)
    objective, value = two_steps(loss)
    assert value.item() == pytest.approx(1 - 0.5 + 0.5)
    assert objective.miner.num_bank_negatives == 2
    assert objective.last_stats["tuples"].item() == 2
    assert objective.last_stats["satisfied"].item() == 0.0
    # in-batch mining only: the negatives are 5 and 4 away, the hinge is inactive
    objective, value = two_steps(loss, source="batch")
    assert value.item() == 0.0 and objective.last_stats["satisfied"].item() == 1.0


def test_contrastive_loss_sees_the_bank_negative():
    loss = losses.ContrastiveLoss(pos_margin=0.0, neg_margin=1.0, distance=L2)
    # positive pairs: relu(1 - 0) = 1; negative pairs: relu(1 - 0.5) = 0.5 (each averaged)
    _, value = two_steps(loss)
    assert value.item() == pytest.approx(1.0 + 0.5)
    _, value = two_steps(loss, source="batch")
    assert value.item() == pytest.approx(1.0)


def test_multi_similarity_loss_sees_the_bank_negative():
    alpha, beta, base = 2.0, 50.0, 0.5
    loss = losses.MultiSimilarityLoss(alpha=alpha, beta=beta, base=base)  # cosine similarity
    real = torch.tensor([[1.0, 0.0], [0.6, 0.8]])  # cos(r0, r1) = 0.6
    previous = torch.tensor([[0.8, 0.6]])  # cos 0.8 with r0, 0.96 with r1
    fake = torch.tensor([[-1.0, 0.0]])  # cos -1 with r0, -0.6 with r1
    objective = MetricObjective(
        loss, miner=FaissHardNegativeMiner(k=1, bank=16, distance=loss.distance)
    )
    objective(real, previous)
    value = objective(real, fake)

    def ms(s_pos, s_neg):
        pos = math.log1p(math.exp(-alpha * (s_pos - base))) / alpha
        neg = math.log1p(math.exp(beta * (s_neg - base))) / beta
        return pos + neg

    # MultiSimilarityLoss averages over every row of the batch (the fake row contributes 0)
    expected = (ms(0.6, 0.8) + ms(0.6, 0.96)) / 3
    assert value.item() == pytest.approx(expected, rel=1e-5)


def test_mvm_triplet_loss_sees_the_bank_negative():
    # squared distances: d_ap = 1, d_an = 0.25; guidance g = cos(n - a, p - a) summed = 1 + 1
    _, value = two_steps(MvMTripletLoss(margin=1.0, alpha=0.01, guidance_reduction="sum"))
    assert value.item() == pytest.approx(1 - 0.25 + 1 - 0.01 * 2)
    # the default averages the guidance: g = (1 + 1) / 2
    _, value = two_steps(MvMTripletLoss(margin=1.0, alpha=0.01))
    assert value.item() == pytest.approx(1 - 0.25 + 1 - 0.01 * 1)
    _, value = two_steps(MvMTripletLoss(margin=1.0, alpha=0.01), source="batch")
    # negatives at squared distance 25 and 16: both hinges inactive
    assert value.item() == 0.0


def test_bank_is_filled_after_mining_and_gradients_reach_the_batch_only():
    g = torch.Generator().manual_seed(0)
    miner = FaissHardNegativeMiner(k=4, bank=FakeEmbeddingBank(100))
    objective = MetricObjective(losses.TripletMarginLoss(), miner=miner)
    real = torch.randn(8, 4, generator=g, requires_grad=True)
    fake = torch.randn(8, 4, generator=g, requires_grad=True)
    objective(real, fake).backward()
    # step 0: the bank was empty while mining; this step's fakes were added afterwards
    assert miner.num_bank_negatives == 0 and len(miner.bank) == 8
    assert torch.equal(miner.bank.embeddings[:8], fake.detach())
    assert miner.bank.step == 1
    assert real.grad.abs().sum() > 0 and fake.grad.abs().sum() > 0
    value = objective(torch.randn(8, 4, generator=g), torch.randn(8, 4, generator=g))
    assert len(miner.bank) == 16 and torch.isfinite(value)


def test_explicit_steps_and_stale_bank_entries():
    miner = FaissHardNegativeMiner(k=1, bank=FakeEmbeddingBank(16, max_age=100))
    objective = MetricObjective(losses.TripletMarginLoss(margin=0.5, distance=L2), miner=miner)
    objective(REAL_EMB, PREVIOUS_FAKE, step=10)
    assert miner.bank.steps[0].item() == 10
    objective(REAL_EMB, FAKE_EMB, step=110)  # age 100: still used
    assert miner.num_bank_negatives == 2
    value = objective(REAL_EMB, FAKE_EMB, step=111)  # age 101: dropped; [5, 0] is the nearest
    assert miner.num_bank_negatives == 0 and value.item() == 0.0


def test_fake_samples_reach_a_reembedding_bank():
    bank = FakeEmbeddingBank(16, max_age=1, stale="reembed", reembed_fn=lambda x: x[:, :2] * 0)
    objective = MetricObjective(miner=FaissHardNegativeMiner(k=1, bank=bank))
    samples = torch.randn(1, 3)
    objective(REAL_EMB, PREVIOUS_FAKE, fake_samples=samples)
    assert torch.equal(bank.samples[0], samples[0])
    bank.set_step(5)  # the entry is stale: re-embedded to [0, 0] before mining
    objective(REAL_EMB, FAKE_EMB, fake_samples=samples)
    assert torch.equal(bank.embeddings[0], torch.zeros(2)) and bank.steps[0].item() == 5
    with pytest.raises(ValueError, match="fake_samples="):
        objective(REAL_EMB, FAKE_EMB)


def test_without_a_bank_the_objective_is_the_plain_pml_call():
    g = torch.Generator().manual_seed(1)
    real, fake = torch.randn(6, 3, generator=g), torch.randn(9, 3, generator=g)
    miner = FaissHardNegativeMiner(k=3)
    objective = MetricObjective(losses.TripletMarginLoss(), miner=miner)
    emb, labels = torch.cat([real, fake]), real_fake_labels(6, 9)
    torch.manual_seed(0)
    expected = losses.TripletMarginLoss()(emb, labels, miner(emb, labels))
    torch.manual_seed(0)
    assert objective(real, fake).item() == pytest.approx(expected.item())


class _ListMiner(BaseMiner):
    """A reference miner returning fixed tuples, one of them of the wrong structure."""

    def mine(self, embeddings, labels, ref_emb, ref_labels):
        raise AssertionError("MetricObjective must call mine_with_reference")

    def mine_with_reference(self, embeddings, labels, ref_emb=None, ref_labels=None, step=None):
        extra = torch.tensor([[0.5, 0.0]])
        ref_emb = torch.cat([embeddings, extra])
        ref_labels = torch.cat([labels, torch.tensor([FAKE])])
        # (0, 1, 3): valid, negative from the reference set; (0, 2, 3): positive is a fake
        indices = (torch.tensor([0, 0]), torch.tensor([1, 2]), torch.tensor([3, 3]))
        return indices, ref_emb, ref_labels


def test_reference_tuples_are_restricted_to_the_mvm_structure():
    miner = _ListMiner()
    assert isinstance(FaissHardNegativeMiner(bank=4), ReferenceMiner)
    objective = MetricObjective(losses.TripletMarginLoss(margin=0.5, distance=L2), miner=miner)
    value = objective(REAL_EMB, FAKE_EMB)
    assert objective.last_stats["tuples"].item() == 1
    assert value.item() == pytest.approx(1 - 0.5 + 0.5)
    labels = real_fake_labels(2, 1)
    assert labels.tolist() == [REAL, REAL, FAKE]
