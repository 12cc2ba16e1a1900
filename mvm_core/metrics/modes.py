"""Mode coverage on 2D Gaussian mixtures, with the protocol of PacGAN Table 1 (after VEEGAN).

On 2,500 generated samples (:data:`PACGAN_NUM_SAMPLES`):

1. each sample goes to its nearest mode, measured in std-normalised distance ``||x - mu_k|| / s_k``
   (plain nearest mean when all modes share one std);
2. it is *high quality* when that normalised distance is below 3 (strictly);
3. a mode is *captured* when it has at least one high-quality sample;
4. the reverse KL divergence ``KL(q || p) = sum_k q_k log(q_k / p_k)`` between the histogram ``q``
   of high-quality samples over modes and the mixture's priors ``p`` (uniform in the benchmarks).

KL direction: PacGAN reports finite KL values (0.45 on the ring for a GAN that captures 6.3 of 8
modes), so the generated histogram must be the first argument: with ``KL(p || q)`` every dropped
mode would make it infinite. Terms with ``q_k = 0`` contribute 0. The assignment and threshold
follow PacGAN's ``MetricLogger`` (fjxmlzn/PacGAN,
synthetic_data_experiments/PacGAN/pacgan/extensions.py), which divides squared offsets by the mode variances and keeps samples with distance < 3; that code
also logs a JSD against the uniform histogram, returned here as ``jsd`` (against the priors).

Results are ``nan`` for the KL and JSD when no sample is high quality (the histogram is undefined).

Discrete modes (:func:`discrete_mode_coverage`, Stacked MNIST after VEEGAN and PacGAN Table 2):
every sample already has a mode id (for Stacked MNIST ``100 * d_R + 10 * d_G + d_B``, the digits a
classifier reads in the three channels, :data:`STACKED_MNIST_NUM_SAMPLES` = 26,000 samples); the
modes covered are the ids with at least one sample, and the KL is the same reverse
``KL(q || uniform) = log K + sum_k q_k log q_k`` of the sample histogram ``q`` (0 when every mode
gets the same share; ``log K`` when all samples fall in one mode). There is no quality threshold.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .._checks import check_embeddings
from .bins import jensen_shannon

PACGAN_NUM_SAMPLES = 2500
"""Generated samples per evaluation in PacGAN's protocol."""

STACKED_MNIST_NUM_SAMPLES = 26_000
"""Generated samples per Stacked MNIST evaluation (VEEGAN, PacGAN Table 2)."""

STACKED_MNIST_MODES = 1000
"""Modes of Stacked MNIST: 10 digits in each of 3 channels."""

HIGH_QUALITY_THRESHOLD = 3.0
"""A sample is high quality when its std-normalised distance to its mode is below this."""


@dataclass(frozen=True)
class ModeCoverage:
    """Mode-coverage outcome on one sample set.

    ``counts`` (K,): high-quality samples per mode; ``assignments`` (N,): nearest mode of every
    sample; ``high_quality`` (N,): the mask of high-quality samples.
    """

    modes: int
    high_quality_fraction: float
    reverse_kl: float
    jsd: float
    counts: torch.Tensor
    assignments: torch.Tensor
    high_quality: torch.Tensor

    @property
    def num_modes(self) -> int:
        return self.counts.shape[0]

    def as_dict(self) -> dict[str, float]:
        """The three PacGAN numbers (+ JSD) as plain floats."""
        return {
            "modes": float(self.modes),
            "high_quality": self.high_quality_fraction,
            "reverse_kl": self.reverse_kl,
            "mode_jsd": self.jsd,
        }


def _mixture_parts(means, std, priors):
    """Accept a :class:`~mvm_core.data.toy.GaussianMixture2D` in place of ``means``."""
    if hasattr(means, "means") and hasattr(means, "std") and hasattr(means, "probs"):
        mixture = means
        if std is not None or priors is not None:
            raise ValueError(
                "pass either a GaussianMixture2D or means/std/priors, not both: got a mixture"
                " and an explicit std or priors."
            )
        return mixture.means, mixture.std, mixture.probs
    if std is None:
        raise ValueError(
            "std is required with a means tensor (the mixture's per-coordinate standard"
            " deviation, e.g. 0.01 for the ring, 0.05 for the grid); or pass a GaussianMixture2D."
        )
    return means, std, priors


@torch.no_grad()
def mode_coverage(
    samples: torch.Tensor,
    means,
    std: float | torch.Tensor | None = None,
    priors: torch.Tensor | None = None,
    *,
    threshold: float = HIGH_QUALITY_THRESHOLD,
) -> ModeCoverage:
    """Modes captured, share of high-quality samples and reverse KL (PacGAN Table 1 protocol).

    Args:
        samples: (N, D) generated samples (D = 2 for the benchmarks; any D works).
        means: (K, D) mode means, or a ``GaussianMixture2D`` (then ``std``/``priors`` come from it).
        std: one std for all modes, or (K,) per-mode stds (isotropic per mode).
        priors: (K,) mixing weights (normalised here); default uniform.
        threshold: high-quality cut in std units (PacGAN: 3).
    """
    means, std, priors = _mixture_parts(means, std, priors)
    check_embeddings("samples", samples)
    check_embeddings("means", means)
    if means.shape[1] != samples.shape[1]:
        raise ValueError(
            f"samples have {samples.shape[1]} dimensions but means have {means.shape[1]};"
            " they must describe the same space."
        )
    k = means.shape[0]
    std_t = torch.as_tensor(std, dtype=torch.float64)
    if std_t.ndim == 0:
        std_t = std_t.expand(k)
    if std_t.shape != (k,) or not bool((std_t > 0).all()):
        raise ValueError(
            f"std must be a positive number or a (K,) = ({k},) tensor of them; got {std!r}."
        )
    if priors is None:
        p = torch.full((k,), 1.0 / k, dtype=torch.float64)
    else:
        p = torch.as_tensor(priors, dtype=torch.float64).cpu()
        if p.shape != (k,) or bool((p < 0).any()) or float(p.sum()) <= 0:
            raise ValueError(
                f"priors must be ({k},) non-negative weights with a positive sum (one per mode);"
                f" got {priors!r}."
            )
        p = p / p.sum()
    if threshold <= 0:
        raise ValueError(f"threshold must be > 0 (in std units); got {threshold}.")

    x = samples.detach().cpu().to(torch.float64)
    mu = means.detach().cpu().to(torch.float64)
    normalised = torch.cdist(x, mu) / std_t[None, :]  # (N, K)
    distance, assignments = normalised.min(dim=1)
    high_quality = distance < threshold
    counts = torch.bincount(assignments[high_quality], minlength=k)
    total = int(counts.sum())
    if total == 0:
        reverse_kl = jsd = math.nan
    else:
        q = counts.to(torch.float64) / total
        pos = q > 0
        reverse_kl = float((q[pos] * (q[pos] / p[pos]).log()).sum())  # inf where p_k = 0 < q_k
        jsd = jensen_shannon(q, p)
    return ModeCoverage(
        modes=int((counts > 0).sum()),
        high_quality_fraction=total / x.shape[0],
        reverse_kl=reverse_kl,
        jsd=jsd,
        counts=counts,
        assignments=assignments,
        high_quality=high_quality,
    )


@dataclass(frozen=True)
class DiscreteModeCoverage:
    """Coverage of K discrete modes: ``modes`` with a sample, ``reverse_kl`` = KL(q || uniform),
    ``counts`` (K,) samples per mode."""

    modes: int
    reverse_kl: float
    counts: torch.Tensor

    @property
    def num_modes(self) -> int:
        return self.counts.shape[0]

    def as_dict(self) -> dict[str, float]:
        return {"modes": float(self.modes), "reverse_kl": self.reverse_kl}


def histogram_mode_coverage(counts: torch.Tensor) -> DiscreteModeCoverage:
    """Modes covered and ``KL(q || uniform)`` from a (K,) histogram of samples per mode.

    ``q = counts / counts.sum()``; terms with ``q_k = 0`` contribute 0, so the KL is finite:
    0 for a flat histogram, ``log K`` when one mode holds every sample.
    """
    counts = torch.as_tensor(counts)
    if counts.ndim != 1 or counts.numel() == 0 or counts.dtype.is_floating_point or bool((counts < 0).any()):
        raise ValueError(
            "counts must be a non-empty 1-D integer tensor of samples per mode (K,); got"
            f" {tuple(counts.shape)} of {counts.dtype}."
        )
    total = int(counts.sum())
    if total == 0:
        raise ValueError("counts holds no sample (all zeros); the mode histogram is undefined.")
    q = counts.to(torch.float64) / total
    pos = q > 0
    k = counts.numel()
    reverse_kl = float((q[pos] * (q[pos] * k).log()).sum())
    return DiscreteModeCoverage(modes=int(pos.sum()), reverse_kl=max(reverse_kl, 0.0), counts=counts.long())


def discrete_mode_coverage(mode_ids: torch.Tensor, num_modes: int = STACKED_MNIST_MODES) -> DiscreteModeCoverage:
    """Modes covered of ``num_modes`` and ``KL(q || uniform)`` from (N,) integer mode ids.

    For Stacked MNIST: ids ``100 * d_R + 10 * d_G + d_B`` of 26,000 samples, the digits predicted by
    the MNIST classifier on each channel (:meth:`MnistClassifier.predict_channels`).
    """
    ids = torch.as_tensor(mode_ids).detach().cpu()
    if ids.ndim != 1 or ids.dtype.is_floating_point or ids.numel() == 0:
        raise ValueError(f"mode_ids must be a non-empty 1-D integer tensor; got {tuple(ids.shape)} of {ids.dtype}.")
    if bool((ids < 0).any()) or bool((ids >= num_modes).any()):
        raise ValueError(f"mode_ids must lie in 0..{num_modes - 1} (num_modes={num_modes}); got"
                         f" {int(ids.min())}..{int(ids.max())}.")
    return histogram_mode_coverage(torch.bincount(ids.long(), minlength=num_modes))


__all__ = [
    "HIGH_QUALITY_THRESHOLD",
    "PACGAN_NUM_SAMPLES",
    "STACKED_MNIST_MODES",
    "STACKED_MNIST_NUM_SAMPLES",
    "DiscreteModeCoverage",
    "ModeCoverage",
    "discrete_mode_coverage",
    "histogram_mode_coverage",
    "mode_coverage",
]
