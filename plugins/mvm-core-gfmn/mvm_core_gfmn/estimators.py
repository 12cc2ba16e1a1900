"""Estimators of the real-minus-generated statistic difference, and the generator loss each gives.

For one statistic vector (a layer's feature mean, or its variance) the generator sees, each step,
the minibatch difference ``Delta_t = s_real - s_fake(batch_t)`` (``s_real`` over the whole real
dataset, fixed; ``Delta_t`` carries gradients to the generator). Minibatch estimates of ``s_fake``
are noisy for small batches, which is what GFMN's ADAM moving average addresses:

``Minibatch``
    loss ``||Delta_t||^2``: the plain estimate (gradient ``-2 Delta_t^T ds_fake/dtheta``).
``MovingAverage(alpha)``
    ``v_1 = Delta_1``, ``v_t = (1 - alpha) v_{t-1} + alpha Delta_t`` with ``v_{t-1}`` a constant
    and ``Delta_t`` differentiable; loss ``||v_t||^2`` (gradient
    ``-2 alpha v_t^T ds_fake/dtheta``). This is the authors' "regular moving average" (their code
    averages the generated statistics; with ``s_real`` fixed that is the same ``v``); ``alpha=1``
    is the minibatch estimator.
``AdamMovingAverage(lr, betas, eps)`` (AMA, GFMN Sec. 3.2)
    ``v`` is updated by one Adam step on ``L(v) = 1/2 ||v - Delta_t||^2`` (gradient
    ``g = v - Delta_t``, bias-corrected moments, ``v`` starts at 0); the generator then minimizes
    ``v^T Delta_t`` with ``v`` constant, i.e. its gradient is ``-v^T ds_fake/dtheta``. The value of
    this loss is not a distance (it can be negative); read
    :attr:`~mvm_core_gfmn.loss.GFMNTerm.last_matching_loss` to monitor training.

Defaults of the AMA step follow the authors' code (github.com/IBM/gfmn, ``gfmn.py``): Adam with
``lr=1e-5`` (``--lrMovAvrg``), ``betas=(0.5, 0.999)`` (``--beta1`` shared with the generator's
optimizer), ``eps=1e-8`` (torch's default). Adam is invariant to a constant rescaling of its
gradient, so the code's ``MSELoss`` instead of ``1/2 ||.||^2`` changes nothing but the effect of
``eps``. The authors initialize ``v`` with ``nn.Linear``'s random init; we start at 0, which Adam's
bias correction handles and which keeps runs deterministic.

State lives in a dict of tensors per statistic vector (``step`` is an int64 scalar), so it can be
saved with safetensors and restored for an exact resume.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch


class DifferenceEstimator(ABC):
    """Turns the minibatch difference ``Delta_t`` into a generator loss, updating its state."""

    name: str = ""

    @abstractmethod
    def init_state(self, like: torch.Tensor) -> dict[str, torch.Tensor]:
        """Fresh state for a statistic vector shaped, typed and placed like ``like``."""

    @abstractmethod
    def loss(self, delta: torch.Tensor, state: dict[str, torch.Tensor]) -> torch.Tensor:
        """Scalar generator loss for ``delta = s_real - s_fake`` (differentiable); updates
        ``state`` in place."""

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({fields})"


class Minibatch(DifferenceEstimator):
    """``||Delta_t||^2`` on the current minibatch; no state."""

    name = "minibatch"

    def init_state(self, like: torch.Tensor) -> dict[str, torch.Tensor]:
        return {}

    def loss(self, delta: torch.Tensor, state: dict[str, torch.Tensor]) -> torch.Tensor:
        return delta.square().sum()


class MovingAverage(DifferenceEstimator):
    """Exponential moving average of ``Delta`` (SGD on ``1/2 ||v - Delta||^2`` with step alpha)."""

    name = "ma"

    def __init__(self, alpha: float = 0.1):
        if not 0.0 < alpha <= 1.0:
            raise ValueError(f"alpha must be in (0, 1] (1 = plain minibatch); got {alpha!r}.")
        self.alpha = float(alpha)

    def init_state(self, like: torch.Tensor) -> dict[str, torch.Tensor]:
        return {
            "v": torch.zeros_like(like),
            "step": torch.zeros((), dtype=torch.int64, device=like.device),
        }

    def loss(self, delta: torch.Tensor, state: dict[str, torch.Tensor]) -> torch.Tensor:
        # first step: v_0 := Delta_1 (detached), so v_1 = Delta_1 in value, gradient alpha-scaled
        previous = torch.where(state["step"] > 0, state["v"], delta.detach())
        v = (1.0 - self.alpha) * previous + self.alpha * delta
        state["v"].copy_(v.detach())
        state["step"].add_(1)
        return v.square().sum()


class AdamMovingAverage(DifferenceEstimator):
    """GFMN's AMA: ``v`` follows ``Delta`` by Adam steps on ``1/2 ||v - Delta||^2``."""

    name = "ama"

    def __init__(
        self, lr: float = 1e-5, betas: tuple[float, float] = (0.5, 0.999), eps: float = 1e-8
    ):
        if not lr > 0:
            raise ValueError(f"lr must be > 0; got {lr!r}.")
        if len(betas) != 2 or not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"betas must be two numbers in [0, 1); got {betas!r}.")
        if not eps >= 0:
            raise ValueError(f"eps must be >= 0; got {eps!r}.")
        self.lr = float(lr)
        self.betas = (float(betas[0]), float(betas[1]))
        self.eps = float(eps)

    def init_state(self, like: torch.Tensor) -> dict[str, torch.Tensor]:
        return {
            "v": torch.zeros_like(like),
            "exp_avg": torch.zeros_like(like),
            "exp_avg_sq": torch.zeros_like(like),
            "step": torch.zeros((), dtype=torch.int64, device=like.device),
        }

    @torch.no_grad()
    def update(self, delta: torch.Tensor, state: dict[str, torch.Tensor]) -> torch.Tensor:
        """One Adam step of ``v`` on ``1/2 ||v - delta||^2``; returns the new ``v``."""
        beta1, beta2 = self.betas
        v, m, s = state["v"], state["exp_avg"], state["exp_avg_sq"]
        state["step"].add_(1)
        step = state["step"].to(v.dtype)  # tensor arithmetic: no host sync on accelerators
        grad = v - delta
        m.mul_(beta1).add_(grad, alpha=1.0 - beta1)
        s.mul_(beta2).addcmul_(grad, grad, value=1.0 - beta2)
        m_hat = m / (1.0 - torch.pow(beta1, step))
        s_hat = s / (1.0 - torch.pow(beta2, step))
        v.sub_(self.lr * m_hat / (s_hat.sqrt() + self.eps))
        return v

    def loss(self, delta: torch.Tensor, state: dict[str, torch.Tensor]) -> torch.Tensor:
        v = self.update(delta.detach(), state)
        return (v.detach() * delta).sum()


ESTIMATORS: dict[str, type[DifferenceEstimator]] = {
    "minibatch": Minibatch,
    "ma": MovingAverage,
    "ama": AdamMovingAverage,
}


def make_estimator(estimator: str | DifferenceEstimator, **options) -> DifferenceEstimator:
    """An estimator from its name (``"minibatch"``, ``"ma"``, ``"ama"``) and options, or as is."""
    if isinstance(estimator, DifferenceEstimator):
        if options:
            raise ValueError(
                f"estimator options {sorted(options)} given with an estimator instance"
                f" {estimator!r}; set them on the instance instead."
            )
        return estimator
    if estimator not in ESTIMATORS:
        raise ValueError(
            f"estimator must be one of {sorted(ESTIMATORS)} or a DifferenceEstimator; got"
            f" {estimator!r}."
        )
    return ESTIMATORS[estimator](**options)
