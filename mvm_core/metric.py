"""Metric learning over real and generated samples: the metric network's objective in MvM.

The metric network is trained so that real samples are close to each other and generated samples
are far from real ones: anchors and positives are real, negatives are generated (hard negatives).
Any pytorch-metric-learning tuple loss does this once the batch is labelled ``REAL``/``FAKE`` and
the tuples are mined with that structure:

>>> from pytorch_metric_learning import losses
>>> objective = MetricObjective(losses.MultiSimilarityLoss())      # one-line swap
>>> loss = objective(real_emb, fake_emb)                           # fake_emb = M(G(z).detach())

Provided here:

* :class:`MvMTripletLoss`: the reference loss, a triplet hinge on squared distances with the
  direction-guidance cosine term, as a pml ``BaseMetricLossFunction``;
* :class:`RealFakeTripletMiner`: the reference code's random tuples (real anchors, real
  positives, fake negatives, a bounded number of triplets per anchor); the default miner is the
  FAISS hard-negative miner of :mod:`mvm_core.mining`;
* :class:`MetricObjective`: labels, mining and the loss behind one call site, with construction-time
  checks that reject losses that cannot work here.
"""

from __future__ import annotations

import warnings
from typing import Literal

import torch
import torch.nn.functional as F
from pytorch_metric_learning.distances import BaseDistance
from pytorch_metric_learning.losses import BaseMetricLossFunction
from pytorch_metric_learning.miners import BaseMiner
from pytorch_metric_learning.utils import loss_and_miner_utils as lmu

from ._checks import check_embeddings, check_same_dim
from .matching import rowwise_distances, squared_euclidean

REAL = 0
FAKE = 1

Selection = Literal["random", "hardest", "easiest"]


def real_fake_labels(n_real: int, n_fake: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """Labels for ``cat([real, fake])``: ``REAL`` (0) for the first ``n_real``, ``FAKE`` (1) after."""
    labels = torch.full((n_real + n_fake,), FAKE, dtype=torch.long, device=device)
    labels[:n_real] = REAL
    return labels


class MvMTripletLoss(BaseMetricLossFunction):
    """The MvM reference triplet loss with direction guidance.

    For triplets ``(a, p, n)`` (real anchor, real positive, fake negative)::

        g      = mean_i cos(n_i - a_i, p_i - a_i)          (one scalar; the paper sums over i)
        loss_i = relu(d(a_i, p_i) - d(a_i, n_i) + margin - alpha * g)

    with ``d`` the squared Euclidean distance by default, averaged over triplets. ``g`` rewards
    negatives that lie in the direction of the positives (hard negatives along the real manifold).
    ``smooth=True`` uses softplus instead of relu (the reference StyleGAN2 variant).

    ``guidance_reduction="mean"`` (the default) averages the cosines, so the term is at most
    ``alpha`` whatever the number of triplets. ``"sum"`` is the published formula: ``alpha * g``
    grows with the number of triplets and passes the margin once ``alpha * T * mean cos >
    margin`` (T = 512 triplets at batch 64 with 8 negatives per anchor): every triplet then reads
    as satisfied, the loss and its gradient are exactly 0 and the metric network stops learning.
    The ``reference`` preset keeps ``"sum"`` to reproduce the paper.

    Use with :class:`RealFakeTripletMiner` (or any miner giving triplets); with labels only, pml's
    convention applies (all triplets of ``triplets_per_anchor`` per anchor).
    """

    def __init__(
        self,
        margin: float = 1.0,
        alpha: float = 1e-2,
        smooth: bool = False,
        triplets_per_anchor: int | str = "all",
        distance: BaseDistance | None = None,
        guidance_reduction: Literal["sum", "mean"] = "mean",
        **kwargs,
    ):
        if guidance_reduction not in ("sum", "mean"):
            raise ValueError(f"guidance_reduction must be 'sum' or 'mean'; got {guidance_reduction!r}.")
        super().__init__(distance=squared_euclidean() if distance is None else distance, **kwargs)
        self.guidance_reduction = guidance_reduction
        self.margin = float(margin)
        self.alpha = float(alpha)
        self.smooth = bool(smooth)
        self.triplets_per_anchor = triplets_per_anchor

    def compute_loss(self, embeddings, labels, indices_tuple, ref_emb, ref_labels):
        indices_tuple = lmu.convert_to_triplets(
            indices_tuple, labels, ref_labels, t_per_anchor=self.triplets_per_anchor
        )
        a, p, n = indices_tuple
        if len(a) == 0:
            return self.zero_losses()
        anchors, positives, negatives = embeddings[a], ref_emb[p], ref_emb[n]
        d_ap = rowwise_distances(anchors, positives, self.distance)
        d_an = rowwise_distances(anchors, negatives, self.distance)
        cosines = F.cosine_similarity(negatives - anchors, positives - anchors, dim=1)
        guidance = cosines.sum() if self.guidance_reduction == "sum" else cosines.mean()
        violation = self.distance.margin(d_ap, d_an) + self.margin - self.alpha * guidance
        loss = F.softplus(violation) if self.smooth else F.relu(violation)
        return {"loss": {"losses": loss, "indices": indices_tuple, "reduction_type": "triplet"}}


class RealFakeTripletMiner(BaseMiner):
    """Triplets with real anchors, real positives and fake negatives, a bounded number of them.

    For every real anchor, ``triplets_per_anchor`` triplets: positives among the *other* reals and
    negatives among the fakes, each chosen ``"random"``ly (the reference), ``"hardest"`` (nearest
    fake / farthest real) or ``"easiest"``. The output never exceeds
    ``n_real * triplets_per_anchor`` triplets, nor ``max_triplets`` when given (a random subset).

    Works with ``ref_emb``: anchors come from ``embeddings`` (labels ``REAL`` rows), positives and
    negatives from ``ref_emb``; with ``ref_emb`` omitted, the same batch serves both.
    """

    def __init__(
        self,
        triplets_per_anchor: int = 1,
        positives: Selection = "random",
        negatives: Selection = "random",
        max_triplets: int | None = None,
        **kwargs,
    ):
        if not isinstance(triplets_per_anchor, int) or triplets_per_anchor < 1:
            raise ValueError(
                f"triplets_per_anchor must be a positive int (tuples are always bounded); got"
                f" {triplets_per_anchor!r}."
            )
        for name, value in (("positives", positives), ("negatives", negatives)):
            if value not in ("random", "hardest", "easiest"):
                raise ValueError(f"{name} must be 'random', 'hardest' or 'easiest'; got {value!r}.")
        if max_triplets is not None and max_triplets < 1:
            raise ValueError(f"max_triplets must be >= 1 or None; got {max_triplets}.")
        super().__init__(distance=kwargs.pop("distance", None) or squared_euclidean(), **kwargs)
        self.triplets_per_anchor = triplets_per_anchor
        self.positives = positives
        self.negatives = negatives
        self.max_triplets = max_triplets

    def mine(self, embeddings, labels, ref_emb, ref_labels):
        device = embeddings.device
        anchors = torch.nonzero(labels == REAL, as_tuple=True)[0]
        real_ref = torch.nonzero(ref_labels == REAL, as_tuple=True)[0]
        fake_ref = torch.nonzero(ref_labels == FAKE, as_tuple=True)[0]
        empty = torch.empty(0, dtype=torch.long, device=device)
        if len(anchors) == 0 or len(fake_ref) == 0:
            return empty, empty, empty
        same_batch = ref_emb is embeddings
        k = self.triplets_per_anchor
        # positives: never the anchor itself when it is in the reference set
        pos_block = self._candidate_scores(embeddings[anchors], ref_emb[real_ref], self.positives, True)
        if same_batch:
            is_self = anchors[:, None] == real_ref[None, :]
            pos_block = pos_block.masked_fill(is_self, float("-inf"))
        valid_pos = torch.isfinite(pos_block).sum(1)
        neg_block = self._candidate_scores(embeddings[anchors], ref_emb[fake_ref], self.negatives, False)
        kp = min(k, int(valid_pos.max()) if len(valid_pos) else 0)
        kn = min(k, len(fake_ref))
        if kp == 0:
            return empty, empty, empty
        pos_choice = pos_block.topk(kp, dim=1).indices  # (A, kp)
        neg_choice = neg_block.topk(kn, dim=1).indices  # (A, kn)
        t = min(kp, kn)
        a = anchors[:, None].expand(-1, t)
        p = real_ref[pos_choice[:, :t]]
        n = fake_ref[neg_choice[:, :t]]
        keep = torch.isfinite(pos_block.gather(1, pos_choice[:, :t]))
        a, p, n = a[keep], p[keep], n[keep]
        if self.max_triplets is not None and len(a) > self.max_triplets:
            pick = torch.randperm(len(a), device=device)[: self.max_triplets]
            a, p, n = a[pick], p[pick], n[pick]
        return a, p, n

    def _candidate_scores(self, query, ref, how: str, positive: bool) -> torch.Tensor:
        """Scores (higher = chosen first) of every ref candidate for every query row."""
        if how == "random":
            return torch.rand(query.shape[0], ref.shape[0], device=query.device)
        dist = self.distance(query, ref)
        closeness = dist if self.distance.is_inverted else -dist
        # hardest positive = farthest real; hardest negative = nearest fake
        hard = -closeness if positive else closeness
        return hard if how == "hardest" else -hard


# pml losses that learn class weights/proxies: they would train a real/fake classifier
# (a discriminator), not a metric over real samples.
_CLASSIFICATION_LOSSES = (
    "ArcFaceLoss", "CosFaceLoss", "LargeMarginSoftmaxLoss", "NormalizedSoftmaxLoss",
    "ProxyAnchorLoss", "ProxyNCALoss", "SoftTripleLoss", "SphereFaceLoss", "SubCenterArcFaceLoss",
    "P2SGradLoss",
)
# pml losses that cannot take mined tuples or real/fake labels.
_UNSUPERVISED_LOSSES = ("VICRegLoss", "SelfSupervisedLoss")
# pml losses that ignore mined tuples and use the labels directly: fakes become a class of their own.
_LABEL_ONLY_LOSSES = (
    "InstanceLoss", "PNPLoss", "RankedListLoss", "SmoothAPLoss", "ManifoldLoss", "NPairsLoss",
)


def check_metric_loss(loss: object) -> None:
    """Raise (or warn) at construction for losses that cannot train the MvM metric."""
    if not isinstance(loss, torch.nn.Module) or not callable(loss):
        raise TypeError(
            "metric_loss must be a pytorch-metric-learning loss object (e.g."
            f" losses.TripletMarginLoss()); got {type(loss).__name__}."
        )
    names = {cls.__name__ for cls in type(loss).__mro__}
    if names & set(_CLASSIFICATION_LOSSES):
        raise ValueError(
            f"{type(loss).__name__} is a classification (proxy) loss: it needs num_classes and its own"
            " optimizer for its class weights, and with the labels real/fake it would train a"
            " discriminator instead of a metric. Use a tuple loss such as TripletMarginLoss,"
            " ContrastiveLoss, MultiSimilarityLoss, CircleLoss, NTXentLoss or SupConLoss."
        )
    if names & set(_UNSUPERVISED_LOSSES):
        raise ValueError(
            f"{type(loss).__name__} is a self-supervised loss over augmented pairs; it takes no"
            " labels or mined tuples, so it cannot separate real from generated samples."
            " Use a tuple loss such as TripletMarginLoss or MultiSimilarityLoss."
        )
    if names & set(_LABEL_ONLY_LOSSES):
        warnings.warn(
            f"{type(loss).__name__} ignores mined tuples and uses the labels directly: generated"
            " samples are treated as a class of their own (fake-fake pairs count as positives).",
            stacklevel=3,
        )


#: Negatives per real anchor of the default miner (k nearest fakes in the batch); see docs/mining.md.
DEFAULT_HARD_NEGATIVES = 8


class MetricObjective(torch.nn.Module):
    """The metric network's loss: any pml loss over ``cat(real, fake)`` labelled REAL/FAKE.

    Args:
        loss: a pml loss (default :class:`MvMTripletLoss`).
        miner: a pml miner; ``"default"`` gives the hard-negative miner
            :class:`mvm_core.mining.FaissHardNegativeMiner` (``k=8`` nearest fakes per real anchor
            in the batch, random real positives, squared Euclidean distance; FAISS when
            installed, an exact chunked torch search otherwise); ``"random"`` gives the reference
            code's random tuples (:class:`RealFakeTripletMiner`); ``None`` lets the loss form its
            own tuples from the labels (all pairs/triplets: only for small batches).
        restrict_tuples: keep only mined tuples of the MvM structure (real anchor, real positive,
            fake negative), so any pml miner can be used without fake-fake positives.

    Call ``objective(real_emb, fake_emb)``; ``fake_emb`` must be the metric network's embedding of
    *detached* generated samples. ``last_stats`` holds the number of tuples and the share already
    satisfied (negative farther than positive) of the last call, as detached tensors.

    Miners with a reference set (memory bank): a miner with a method
    ``mine_with_reference(embeddings, labels, step=...) -> (indices, ref_emb, ref_labels)`` (see
    :class:`mvm_core.mining.ReferenceMiner`, e.g. :class:`mvm_core.mining.FaissHardNegativeMiner`
    with a bank) has its tuples index that reference set (the batch followed by bank rows), and the
    loss is called as ``loss(embeddings, labels, indices, ref_emb, ref_labels)``. If the miner
    also has ``enqueue(fake_emb, step=..., samples=...)``, each call's fake embeddings (detached)
    are enqueued *after* mining, so a step never mines its own fakes from the bank. ``step`` and
    ``fake_samples`` (what a ``stale="reembed"`` bank re-embeds) are passed through.
    """

    def __init__(self, loss: BaseMetricLossFunction | None = None, miner: BaseMiner | str | None = "default",
                 restrict_tuples: bool = True):
        super().__init__()
        loss = MvMTripletLoss() if loss is None else loss
        check_metric_loss(loss)
        if miner == "default":
            from .mining import FaissHardNegativeMiner

            # squared Euclidean on the raw embedding whatever the loss measures: mining with a normalized
            # loss distance (pml ContrastiveLoss) gave digits FID ~70 vs 59-60 (docs/mining.md)
            miner = FaissHardNegativeMiner(k=DEFAULT_HARD_NEGATIVES, source="batch")
        elif miner == "random":
            miner = RealFakeTripletMiner()
        elif miner is not None and not isinstance(miner, BaseMiner):
            raise TypeError(
                "miner must be a pytorch-metric-learning miner, 'default' (FAISS hard negatives),"
                f" 'random' (the reference's random triplets) or None; got {miner!r}."
            )
        self.loss = loss
        self.miner = miner
        self.restrict_tuples = restrict_tuples
        self.last_stats: dict[str, torch.Tensor] = {}

    def forward(
        self,
        real_emb: torch.Tensor,
        fake_emb: torch.Tensor,
        *,
        step: int | None = None,
        fake_samples: torch.Tensor | None = None,
    ) -> torch.Tensor:
        check_embeddings("real_emb", real_emb)
        check_embeddings("fake_emb", fake_emb)
        check_same_dim("real_emb", real_emb, "fake_emb", fake_emb)
        embeddings = torch.cat([real_emb, fake_emb])
        labels = real_fake_labels(len(real_emb), len(fake_emb), embeddings.device)
        indices = ref_emb = ref_labels = None
        miner = self.miner
        if miner is not None:
            if callable(getattr(miner, "mine_with_reference", None)):
                indices, ref_emb, ref_labels = miner.mine_with_reference(
                    embeddings, labels, step=step
                )
            else:
                indices = miner(embeddings, labels)
            if self.restrict_tuples:
                indices = restrict_to_real_fake(indices, labels, ref_labels)
        self._record_stats(embeddings, labels, indices, ref_emb)
        if ref_emb is None or ref_emb is embeddings:
            loss = self.loss(embeddings, labels, indices)
        else:
            loss = self.loss(embeddings, labels, indices, ref_emb, ref_labels)
        if miner is not None and callable(getattr(miner, "enqueue", None)):
            miner.enqueue(fake_emb.detach(), step=step, samples=fake_samples)
        return loss

    @torch.no_grad()
    def _record_stats(self, embeddings, labels, indices, ref_emb=None) -> None:
        """Tuple count and share already satisfied (negatives farther than positives)."""
        if indices is None:
            self.last_stats = {}
            return
        ref_emb = embeddings if ref_emb is None else ref_emb
        distance = getattr(self.loss, "distance", None) or squared_euclidean()
        if len(indices) == 3:
            a, p, n = indices
            count = len(a)
            if count:
                d_ap = rowwise_distances(embeddings[a], ref_emb[p], distance)
                d_an = rowwise_distances(embeddings[a], ref_emb[n], distance)
                satisfied = (distance.margin(d_ap, d_an) < 0).float().mean()
        else:  # pairs: negatives farther than the mean positive distance
            a1, p, a2, n = indices
            count = len(a1) + len(a2)
            if len(a1) and len(a2):
                d_pos = rowwise_distances(embeddings[a1], ref_emb[p], distance).mean()
                d_neg = rowwise_distances(embeddings[a2], ref_emb[n], distance)
                satisfied = (distance.margin(d_pos, d_neg) < 0).float().mean()
            else:
                count = 0
        if not count:
            satisfied = torch.tensor(float("nan"))
        self.last_stats = {"tuples": torch.tensor(count), "satisfied": satisfied}


def restrict_to_real_fake(indices: tuple, labels: torch.Tensor,
                          ref_labels: torch.Tensor | None = None) -> tuple:
    """Drop mined tuples that are not (real anchor, real positive, fake negative).

    Anchors index ``labels``; positives and negatives index ``ref_labels`` (default ``labels``).
    """
    real = labels == REAL
    ref_real = real if ref_labels is None else ref_labels == REAL
    if len(indices) == 3:
        a, p, n = indices
        keep = real[a] & ref_real[p] & ~ref_real[n]
        return a[keep], p[keep], n[keep]
    a1, p, a2, n = indices
    keep_pos = real[a1] & ref_real[p]
    keep_neg = real[a2] & ~ref_real[n]
    return a1[keep_pos], p[keep_pos], a2[keep_neg], n[keep_neg]


__all__ = [
    "FAKE", "REAL", "MetricObjective", "MvMTripletLoss", "RealFakeTripletMiner",
    "check_metric_loss", "real_fake_labels", "restrict_to_real_fake",
]
