import itertools

import pytest
import torch
from pytorch_metric_learning.distances import CosineSimilarity, LpDistance

from mvm_core.matching import (
    ManifoldMatchingLoss,
    centroid_matching,
    diameter_matching_paired,
    diameter_matching_sorted,
    directed_hausdorff,
    hausdorff,
    p_diameter,
    pairwise_distances,
)


def randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


# ---- brute-force references (explicit loops) ------------------------------------------------
def bf_sqeuclid(a, b):
    return sum((float(x) - float(y)) ** 2 for x, y in zip(a, b))


def bf_centroid(R, F):
    d = R.shape[1]
    cr = [sum(float(R[i, k]) for i in range(len(R))) / len(R) for k in range(d)]
    cf = [sum(float(F[i, k]) for i in range(len(F))) / len(F) for k in range(d)]
    return sum((x - y) ** 2 for x, y in zip(cr, cf)) ** 0.5


def bf_paired(R, F):
    n = len(R)
    total = 0.0
    for i in range(n):
        for j in range(n):
            total += (bf_sqeuclid(R[i], R[j]) - bf_sqeuclid(F[i], F[j])) ** 2
    return total**0.5


def bf_pair_dists(X):
    return sorted(bf_sqeuclid(X[i], X[j]) for i, j in itertools.combinations(range(len(X)), 2))


def bf_quantile(sorted_vals, q):
    pos = q * (len(sorted_vals) - 1)
    lo = int(pos // 1)
    hi = min(lo + 1, len(sorted_vals) - 1)
    w = pos - lo
    return sorted_vals[lo] * (1 - w) + sorted_vals[hi] * w


def bf_sorted(R, F, p):
    dr, df = bf_pair_dists(R), bf_pair_dists(F)
    k = max(len(dr), len(df))
    levels = [t / (k - 1) for t in range(k)]
    qr = [bf_quantile(dr, t) for t in levels]
    qf = [bf_quantile(df, t) for t in levels]
    return (sum(abs(a - b) ** p for a, b in zip(qr, qf)) / k) ** (1 / p)


def bf_directed_hausdorff(A, B):
    return max(min(bf_sqeuclid(a, b) for b in B) for a in A)


# ---- formulas against brute force -----------------------------------------------------------
def test_pairwise_distances_match_loop():
    X, Y = randn(5, 3), randn(4, 3, seed=1)
    D = pairwise_distances(X, Y)
    for i in range(5):
        for j in range(4):
            assert D[i, j].item() == pytest.approx(bf_sqeuclid(X[i], Y[j]), rel=1e-12)


def test_centroid_matches_loop():
    R, F = randn(6, 4), randn(9, 4, seed=1)
    assert centroid_matching(R, F).item() == pytest.approx(bf_centroid(R, F), rel=1e-12)


def test_paired_form_equals_reference_formula():
    R, F = randn(7, 3), randn(7, 3, seed=1)
    assert diameter_matching_paired(R, F).item() == pytest.approx(bf_paired(R, F), rel=1e-12)
    # the reference code: torch.norm(D_R - D_F) with D from squared differences, clamped at 0
    DR = ((R[:, None] - R[None]) ** 2).sum(-1).clamp(min=0)
    DF = ((F[:, None] - F[None]) ** 2).sum(-1).clamp(min=0)
    assert diameter_matching_paired(R, F).item() == pytest.approx(torch.norm(DR - DF).item(), rel=1e-12)


@pytest.mark.parametrize("n,m,p", [(6, 6, 2.0), (5, 8, 2.0), (9, 4, 1.0), (4, 4, 3.0)])
def test_sorted_form_matches_loop(n, m, p):
    R, F = randn(n, 3), randn(m, 3, seed=1)
    got = diameter_matching_sorted(R, F, p=p).item()
    assert got == pytest.approx(bf_sorted(R, F, p), rel=1e-10)


def test_p_diameter_matches_loop():
    X = randn(6, 2)
    d = bf_pair_dists(X)
    assert p_diameter(X, p=1).item() == pytest.approx(sum(d) / len(d), rel=1e-12)
    assert p_diameter(X, p=2).item() == pytest.approx((sum(v * v for v in d) / len(d)) ** 0.5, rel=1e-12)


def test_hausdorff_matches_loop():
    A, B = randn(5, 3), randn(7, 3, seed=1)
    assert directed_hausdorff(A, B).item() == pytest.approx(bf_directed_hausdorff(A, B), rel=1e-12)
    sym = max(bf_directed_hausdorff(A, B), bf_directed_hausdorff(B, A))
    assert hausdorff(A, B).item() == pytest.approx(sym, rel=1e-12)
    assert hausdorff(A, A).item() == 0.0


def test_hausdorff_hand_checked():
    A = torch.tensor([[0.0, 0.0], [10.0, 0.0]])
    B = torch.tensor([[0.0, 1.0]])
    # from A to B: (0,0)->1, (10,0)->101 ; from B to A: 1
    assert directed_hausdorff(A, B).item() == 101.0
    assert directed_hausdorff(B, A).item() == 1.0
    assert hausdorff(A, B).item() == 101.0


def test_hausdorff_with_similarity():
    A = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    B = torch.tensor([[1.0, 0.0]])
    cos = CosineSimilarity()
    # most similar B for each A: 1 and 0; the worst is 0
    assert directed_hausdorff(A, B, cos).item() == pytest.approx(0.0, abs=1e-7)
    assert directed_hausdorff(B, A, cos).item() == pytest.approx(1.0)


# ---- invariance, gradients ------------------------------------------------------------------
def test_sorted_form_is_permutation_invariant_and_paired_is_not():
    R, F = randn(8, 3), randn(8, 3, seed=1)
    perm = torch.randperm(8, generator=torch.Generator().manual_seed(3))
    assert diameter_matching_sorted(R, F[perm]).item() == pytest.approx(
        diameter_matching_sorted(R, F).item(), rel=1e-12
    )
    assert diameter_matching_sorted(R[perm], F).item() == pytest.approx(
        diameter_matching_sorted(R, F).item(), rel=1e-12
    )
    assert abs(diameter_matching_paired(R, F[perm]).item() - diameter_matching_paired(R, F).item()) > 1e-3


def test_sorted_form_is_zero_for_a_congruent_copy():
    R = randn(6, 3)
    q, _ = torch.linalg.qr(randn(3, 3, seed=4))
    F = R @ q + 5.0  # rotated and translated: same pairwise distances
    assert diameter_matching_sorted(R, F[torch.arange(5, -1, -1)]).item() == pytest.approx(0, abs=1e-10)


@pytest.mark.parametrize(
    "fn",
    [
        lambda R, F: centroid_matching(R, F),
        lambda R, F: diameter_matching_paired(R, F[: len(R)]),
        lambda R, F: diameter_matching_sorted(R, F),
        lambda R, F: diameter_matching_sorted(R, F, p=1.0),
        lambda R, F: ManifoldMatchingLoss()(R, ref_emb=F),
        lambda R, F: ManifoldMatchingLoss(diameter_form="paired")(R, ref_emb=F[: len(R)]),
    ],
)
def test_gradcheck(fn):
    R = randn(5, 3).requires_grad_()
    F = randn(7, 3, seed=1).requires_grad_()
    assert torch.autograd.gradcheck(fn, (R, F))


# ---- the pml-compatible loss ----------------------------------------------------------------
def test_loss_combines_weighted_terms_and_reports_them():
    R, F = randn(6, 3), randn(6, 3, seed=1)
    loss = ManifoldMatchingLoss(centroid_weight=0.5, diameter_weight=2.0)
    value = loss(R, ref_emb=F)
    c, d = centroid_matching(R, F), diameter_matching_sorted(R, F)
    assert value.item() == pytest.approx(0.5 * c.item() + 2.0 * d.item(), rel=1e-12)
    assert loss.last_terms["centroid"].item() == pytest.approx(c.item())
    assert loss.last_terms["diameter"].item() == pytest.approx(d.item())


def test_loss_accepts_other_pml_distances():
    R, F = randn(6, 3), randn(6, 3, seed=1)
    for distance in (LpDistance(normalize_embeddings=False), CosineSimilarity()):
        value = ManifoldMatchingLoss(distance=distance)(R, ref_emb=F)
        assert torch.isfinite(value)
    l2 = LpDistance(normalize_embeddings=False)  # plain Euclidean
    got = ManifoldMatchingLoss(distance=l2, centroid_weight=0)(R, ref_emb=F).item()
    dr = sorted(v**0.5 for v in bf_pair_dists(R))
    df = sorted(v**0.5 for v in bf_pair_dists(F))
    expected = (sum((a - b) ** 2 for a, b in zip(dr, df)) / len(dr)) ** 0.5
    assert got == pytest.approx(expected, rel=1e-6)


def test_zero_loss_for_identical_sets():
    R = randn(6, 3)
    assert ManifoldMatchingLoss()(R, ref_emb=R.clone()).item() == pytest.approx(0, abs=1e-12)


# ---- bad input ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "real,fake,match",
    [
        (torch.randn(4, 3, 2), torch.randn(4, 3), r"real_emb must have shape \(N, D\).*got shape \(4, 3, 2\)"),
        (torch.randn(4, 3), torch.randn(4, 5), "same embedding size; got 3 and 5"),
        (torch.randn(0, 3), torch.randn(4, 3), "real_emb is empty"),
        (torch.ones(4, 3, dtype=torch.long), torch.randn(4, 3), "floating-point.*torch.int64"),
        (torch.tensor([[float("nan"), 0.0], [1.0, 1.0]]), torch.randn(2, 2), "NaN or inf in 1 of 2 rows"),
    ],
)
def test_bad_input_errors_name_the_problem(real, fake, match):
    with pytest.raises((ValueError, TypeError), match=match):
        ManifoldMatchingLoss()(real, ref_emb=fake)


def test_bad_configuration_errors():
    with pytest.raises(ValueError, match="diameter_form must be one of"):
        ManifoldMatchingLoss(diameter_form="sorting")
    with pytest.raises(ValueError, match="needs as many fakes as reals"):
        ManifoldMatchingLoss(diameter_form="paired")(torch.randn(4, 2), ref_emb=torch.randn(5, 2))
    with pytest.raises(ValueError, match="call loss\\(real_emb, ref_emb=fake_emb\\)"):
        ManifoldMatchingLoss()(torch.randn(4, 2))
    with pytest.raises(ValueError, match="at least 2 fake samples"):
        ManifoldMatchingLoss()(torch.randn(4, 2), ref_emb=torch.randn(1, 2))
    with pytest.raises(ValueError, match="centroid_weight must be >= 0"):
        ManifoldMatchingLoss(centroid_weight=-1)


def test_rowwise_distances_agree_with_the_matrix():
    from mvm_core.matching import rowwise_distances

    X, Y = randn(6, 3), randn(6, 3, seed=1)
    for distance in (None, LpDistance(), LpDistance(power=2), CosineSimilarity(), LpDistance(p=1, normalize_embeddings=False)):
        full = pairwise_distances(X, Y, distance)
        assert torch.allclose(rowwise_distances(X, Y, distance), full.diagonal(), atol=1e-5)


def test_sorted_diameter_gradient_is_finite_where_the_two_sets_coincide():
    # identical distance quantiles: the p-th root of 0 has an infinite derivative; the loss must
    # still give a finite (zero) gradient, not NaN
    real = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]], dtype=torch.float64)
    fake = real.flip(0).clone().requires_grad_()
    value = diameter_matching_sorted(real, fake)
    value.backward()
    assert value.item() == 0.0
    assert torch.isfinite(fake.grad).all() and fake.grad.abs().max().item() == 0.0
    # away from 0 the gradient matches finite differences
    moved = (fake.detach() + 0.1 * torch.arange(6, dtype=torch.float64).view(3, 2)).requires_grad_()
    assert torch.autograd.gradcheck(lambda f: diameter_matching_sorted(real, f), (moved,))
    collapsed = torch.zeros(4, 2, dtype=torch.float64, requires_grad=True)
    p_diameter(collapsed, p=2.0).backward()
    assert torch.isfinite(collapsed.grad).all()
