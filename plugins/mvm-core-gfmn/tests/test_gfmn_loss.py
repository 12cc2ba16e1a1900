"""GFMNTerm: generator gradients, estimator wiring, weights, state round trip, errors."""

from __future__ import annotations

import pytest
import torch
from mvm_core.context import GeneratorTerm, StepContext
from mvm_core.features import FeatureExtractor
from safetensors.torch import load_file, save_file

from mvm_core_gfmn.loss import GFMNTerm
from mvm_core_gfmn.statistics import FeatureStatistics, compute_real_statistics
from mvm_core_gfmn.tiny import TinyConvFeatures

D64 = torch.float64


class LinearFeatures(FeatureExtractor):
    """f(x) = W vec(x) on 1 x 2 x 2 images: the smallest extractor with a known Jacobian."""

    layers = ("lin",)
    input_channels = 1
    mean = (0.5,)
    std = (0.5,)  # identity preprocessing on [-1, 1]

    def __init__(self, weight: torch.Tensor):
        super().__init__()
        self.weight = torch.nn.Parameter(weight.clone())
        self.freeze()

    def extract(self, x):
        return {"lin": x.flatten(1) @ self.weight.T}


def _real_stats(k: int, seed: int = 0) -> FeatureStatistics:
    gen = torch.Generator().manual_seed(seed)
    return FeatureStatistics({"lin": torch.randn(k, generator=gen, dtype=D64)},
                             {"lin": torch.rand(k, generator=gen, dtype=D64) + 0.5}, 1000)


def _ctx(fake: torch.Tensor) -> StepContext:
    empty = torch.zeros(0)
    return StepContext(step=0, z=empty, fake=fake, real=empty, fake_emb=empty, real_emb=empty)


@pytest.mark.parametrize("steps", [1, 4])
def test_ama_generator_gradient_is_minus_v_times_jacobian(steps):
    gen = torch.Generator().manual_seed(0)
    weight = torch.randn(3, 4, generator=gen, dtype=D64)
    extractor = LinearFeatures(weight).double()
    term = GFMNTerm(extractor, _real_stats(3), estimator="ama",
                    estimator_options={"lr": 0.05, "betas": (0.5, 0.999)})
    z = torch.randn(6, 2, generator=gen, dtype=D64)
    theta = torch.randn(2, 4, generator=gen, dtype=D64, requires_grad=True)

    def generate(a):  # generator: fake = z A, as (B, 1, 2, 2) images
        return (z @ a).view(-1, 1, 2, 2)

    for _ in range(steps):
        loss = term(_ctx(generate(theta)))
    (grad,) = torch.autograd.grad(loss, theta)

    def fake_mean(a):
        return extractor(generate(a))["lin"].mean(0)

    def fake_var(a):
        return extractor(generate(a))["lin"].var(0, unbiased=True)

    state = term.state_dict()
    v_mean = state["LinearFeatures/lin/mean/v"]
    v_var = state["LinearFeatures/lin/var/v"]
    assert int(state["LinearFeatures/lin/mean/step"]) == steps
    assert v_mean.abs().min() > 0  # a real test: v is not zero after the Adam step(s)
    jac_mean = torch.autograd.functional.jacobian(fake_mean, theta.detach()).reshape(3, -1)
    jac_var = torch.autograd.functional.jacobian(fake_var, theta.detach()).reshape(3, -1)
    expected = -(v_mean @ jac_mean + v_var @ jac_var)
    torch.testing.assert_close(grad.reshape(-1), expected, rtol=1e-10, atol=1e-12)


def test_gradient_with_respect_to_images_in_closed_form():
    # mean term: -(1/B) W^T v_mean for every image; variance term:
    # -(2/(B-1)) W^T (v_var * (f_i - mean f)).
    gen = torch.Generator().manual_seed(5)
    weight = torch.randn(3, 4, generator=gen, dtype=D64)
    term = GFMNTerm(LinearFeatures(weight).double(), _real_stats(3), estimator="ama",
                    estimator_options={"lr": 0.1})
    fake = torch.randn(5, 1, 2, 2, generator=gen, dtype=D64, requires_grad=True)
    (grad,) = torch.autograd.grad(term.loss(fake), fake)
    state = term.state_dict()
    v_mean, v_var = state["LinearFeatures/lin/mean/v"], state["LinearFeatures/lin/var/v"]
    f = fake.detach().flatten(1) @ weight.T
    expected = -(v_mean @ weight) / 5 - (2 / 4) * ((f - f.mean(0)) * v_var) @ weight
    torch.testing.assert_close(grad.flatten(1), expected, rtol=1e-10, atol=1e-12)


def test_minibatch_loss_value_and_matching_log_by_hand():
    # W = I on 4 pixels; two images -> mean and unbiased variance computed by hand.
    term = GFMNTerm(LinearFeatures(torch.eye(4, dtype=D64)).double(),
                    FeatureStatistics({"lin": torch.zeros(4, dtype=D64)},
                                      {"lin": torch.ones(4, dtype=D64)}, 10),
                    estimator="minibatch")
    fake = torch.tensor([[1.0, 0.0, 0.0, 0.0], [-1.0, 0.0, 0.0, 0.5]], dtype=D64)
    loss = term.loss(fake.view(2, 1, 2, 2))
    # mean = [0, 0, 0, .25] -> ||.||^2 = 0.0625; var = [2, 0, 0, .125]
    # -> (1-2)^2 + 1 + 1 + (1-.125)^2 = 3.765625
    assert loss.item() == pytest.approx(0.0625 + 3.765625)
    assert term.last_matching_loss.item() == pytest.approx(loss.item())
    assert term.last_terms["gfmn/matching"].item() == pytest.approx(loss.item())
    term_mean = GFMNTerm(term.extractors, term.real_statistics, estimator="minibatch",
                         reduction="mean")
    assert term_mean.loss(fake.view(2, 1, 2, 2)).item() == pytest.approx((0.0625 + 3.765625) / 4)
    term_mu = GFMNTerm(term.extractors, term.real_statistics, estimator="minibatch",
                       match_variance=False)
    assert term_mu.loss(fake.view(2, 1, 2, 2)).item() == pytest.approx(0.0625)


def test_several_extractors_are_weighted():
    gen = torch.Generator().manual_seed(2)
    a = LinearFeatures(torch.randn(3, 4, generator=gen, dtype=D64)).double()
    b = LinearFeatures(torch.randn(2, 4, generator=gen, dtype=D64)).double()
    sa, sb = _real_stats(3, 1), _real_stats(2, 2)
    fake = torch.randn(8, 1, 2, 2, generator=gen, dtype=D64)
    both = GFMNTerm([a, b], [sa, sb], extractor_weights=[2.0, 0.5], estimator="minibatch")
    assert both.names == ["LinearFeatures.0", "LinearFeatures.1"]
    alone_a = GFMNTerm(a, sa, estimator="minibatch").loss(fake)
    alone_b = GFMNTerm(b, sb, estimator="minibatch").loss(fake)
    assert both.loss(fake).item() == pytest.approx(2.0 * alone_a.item() + 0.5 * alone_b.item())


def test_term_is_a_generator_term_and_extractor_stays_frozen():
    extractor = TinyConvFeatures()
    images = torch.rand(32, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1
    term = GFMNTerm.from_data(extractor, images.split(8))
    assert isinstance(term, GeneratorTerm) and term.needs_pairs is False
    theta = torch.zeros(1, 1, 8, 8, requires_grad=True)
    fake = (images[:6] + theta).clamp(-1, 1)
    term(_ctx(fake)).backward()
    assert theta.grad is not None and theta.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in extractor.parameters())


def test_state_dict_round_trip_resumes_exactly(tmp_path):
    images = torch.rand(40, 1, 8, 8, generator=torch.Generator().manual_seed(1)) * 2 - 1
    stats = compute_real_statistics(TinyConvFeatures(), images.split(10))

    def batches(seed):
        gen = torch.Generator().manual_seed(seed)
        return [torch.rand(8, 1, 8, 8, generator=gen) * 2 - 1 for _ in range(6)]

    for estimator in ("ama", "ma"):
        first = GFMNTerm(TinyConvFeatures(), stats, estimator=estimator)
        stream = batches(7)
        for fake in stream[:3]:
            first.loss(fake)
        saved = first.state_dict()
        assert all(isinstance(v, torch.Tensor) for v in saved.values())
        save_file(saved, str(tmp_path / f"{estimator}.safetensors"))
        continued = [first.loss(fake).item() for fake in stream[3:]]

        resumed = GFMNTerm(TinyConvFeatures(), stats, estimator=estimator)
        resumed.load_state_dict(load_file(str(tmp_path / f"{estimator}.safetensors")))
        again = [resumed.loss(fake).item() for fake in stream[3:]]
        assert again == continued
        final_a, final_b = first.state_dict(), resumed.state_dict()
        assert final_a.keys() == final_b.keys()
        assert all(torch.equal(final_a[k], final_b[k]) for k in final_a)
        fresh = GFMNTerm(TinyConvFeatures(), stats, estimator=estimator)
        assert [fresh.loss(f).item() for f in stream[3:]] != continued  # state matters


def test_load_state_dict_rejects_a_foreign_state():
    stats = compute_real_statistics(TinyConvFeatures(), [torch.zeros(4, 1, 8, 8)])
    ama = GFMNTerm(TinyConvFeatures(), stats, estimator="ama")
    ma = GFMNTerm(TinyConvFeatures(), stats, estimator="ma")
    with pytest.raises(ValueError, match="state_dict does not match this term"):
        ma.load_state_dict(ama.state_dict())
    bad = ama.state_dict()
    key = next(k for k in bad if k.endswith("/v"))
    bad[key] = torch.zeros(3)
    with pytest.raises(ValueError, match="has shape"):
        ama.load_state_dict(bad)


def test_errors_name_the_problem():
    stats = compute_real_statistics(TinyConvFeatures(), [torch.zeros(4, 1, 8, 8)])
    term = GFMNTerm(TinyConvFeatures(), stats)
    with pytest.raises(ValueError, match="at least 2 generated images"):
        term.loss(torch.zeros(1, 1, 8, 8))
    with pytest.raises(ValueError, match="same size and channels"):
        term.loss(torch.zeros(4, 1, 16, 16))
    with pytest.raises(ValueError, match=r"fake must be images of shape \(N, C, H, W\)"):
        term.loss(torch.zeros(4, 64))
    with pytest.raises(ValueError, match="one FeatureStatistics per extractor"):
        GFMNTerm([TinyConvFeatures(), TinyConvFeatures(seed=1)], stats)
    with pytest.raises(ValueError, match=r"lack layer\(s\) \['conv2'\]"):
        partial = FeatureStatistics({"conv1": stats.mean["conv1"]}, {"conv1": stats.var["conv1"]},
                                    4)
        GFMNTerm(TinyConvFeatures(), partial)
    with pytest.raises(TypeError, match="extractors must be a FeatureExtractor"):
        GFMNTerm(torch.nn.Identity(), stats)
    with pytest.raises(ValueError, match="extractor_weights must be 1 non-negative"):
        GFMNTerm(TinyConvFeatures(), stats, extractor_weights=[-1.0])
    with pytest.raises(ValueError, match="one-shot iterator"):
        GFMNTerm.from_data([TinyConvFeatures(), TinyConvFeatures(seed=2)],
                           iter([torch.zeros(4, 1, 8, 8)]))
