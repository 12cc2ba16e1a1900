"""Evaluate a trainer's generator in the right feature space for its data.

* 2D mixtures: PacGAN mode coverage on 2,500 samples (modes, high-quality share, reverse KL);
* digits: the project's digits classifier (``@digits-classifier``): FID, KID, precision/recall,
  Inception score and class coverage from its logits;
* MNIST: the project's MNIST classifier (``@mnist-classifier``), the same metrics, against the
  1,000 held-out images (never trained on);
* Stacked MNIST: each channel classified by the MNIST classifier, modes covered of 1,000 and
  KL(sample histogram || uniform) on 26,000 samples (VEEGAN / PacGAN protocol, ``@mnist-classifier``);
* anything else (e.g. your own image folder): the run's own metric network (``@metric-net``), FID,
  KID, precision/recall. That network is trained to separate real from generated samples, so it is
  a weak judge and its numbers compare checkpoints of one run, not runs; pass Inception weights
  (``inception=``, ``mvm eval --inception FILE``) for FID/KID ``@inception``.
* paired tasks (e.g. super-resolution): the dataset's ``evaluate(trainer, n, metrics)`` on its
  held-out pairs (:class:`mvm_core.data.PairedDataset`; the SR plugin reports PSNR/SSIM on Y).

Samples use a fixed seed, so evaluating never changes the training's random stream.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .data import is_paired
from .metrics import (
    PACGAN_NUM_SAMPLES,
    STACKED_MNIST_NUM_SAMPLES,
    evaluate,
    load_digits_classifier,
    load_inception,
    load_mnist_classifier,
)

# KID over 10 subsets (not the paper's 100): the mean is unbiased either way, the std is coarser,
# and evaluation during training stays a small fraction of a step budget.
_FAST = {"kid_subsets": 10}


def _embed(fn, x: torch.Tensor, device, batch_size: int = 512) -> torch.Tensor:
    """``fn`` over ``x`` in batches on ``device``; float32 results on the CPU."""
    return torch.cat([fn(x[i : i + batch_size].to(device)).float().cpu() for i in range(0, len(x), batch_size)])


SPACE_NOTES = {
    "data": "the samples themselves, against the mixture's known modes (PacGAN protocol)",
    "digits-classifier": "the project's digits classifier (shipped weights), comparable across runs",
    "mnist-classifier": "the project's MNIST classifier (shipped weights), comparable across runs",
    "inception": "Inception-v3 pool features from your local weights file (standard FID/KID)",
    "metric-net": "this run's own metric network: trained to separate real from generated samples,"
    " a weak judge whose numbers compare checkpoints of this run only, not runs; pass Inception"
    " weights (`mvm eval --inception FILE`) for FID/KID @inception",
    "pixels": "raw pixels (no metric network in this run): a weak judge; pass Inception weights"
    " (`mvm eval --inception FILE`) for FID/KID @inception",
}
"""What each feature space of :func:`evaluate_trainer` is, for reports (``mvm eval`` prints it)."""


def _name(dataset) -> str:
    return str(getattr(dataset, "name", ""))


def feature_space(dataset, trainer=None) -> str:
    """The feature space :func:`evaluate_trainer` measures ``dataset`` in, from the data alone.

    ``"data"`` for 2D mixtures, ``"digits-classifier"`` for digits, ``"mnist-classifier"`` for MNIST
    and Stacked MNIST, ``"metric-net"`` for anything else (``"pixels"`` when ``trainer`` is given
    and has no metric network). Paired data has its own protocol (``"paired"``).
    """
    if is_paired(dataset):
        return "paired"
    if getattr(dataset, "mixture", None) is not None:
        return "data"
    name = _name(dataset)
    if name.startswith("digits"):
        return "digits-classifier"
    if name.startswith(("mnist", "stacked-mnist")):
        return "mnist-classifier"
    if trainer is not None and trainer.metric_net is None:
        return "pixels"
    return "metric-net"


def _reference(dataset) -> torch.Tensor:
    """The real images evaluation compares with: the held-out part when the data has one."""
    heldout = getattr(dataset, "heldout", None)
    if heldout is not None:
        return heldout
    if hasattr(dataset, "data"):
        return dataset.data
    return torch.stack([dataset[i][0] for i in range(len(dataset))])


@torch.no_grad()
def evaluate_trainer(trainer, n: int = 2000, metrics: tuple[str, ...] | None = None,
                     cache: dict | None = None, inception: str | None = None,
                     mode_samples: int = STACKED_MNIST_NUM_SAMPLES) -> dict[str, float]:
    """Quality of ``trainer``'s (EMA) generator against its data, in :func:`feature_space`.

    The reference is the data's held-out part when it has one (MNIST: 1,000 unseen images), else
    the training data. Stacked MNIST uses ``mode_samples`` samples whatever ``n`` (default the
    protocol's 26,000, :data:`STACKED_MNIST_NUM_SAMPLES`; fewer only for quick checks).
    ``inception``: a local Inception-v3 weights file (or ``"env"`` for the
    ``MVM_CORE_INCEPTION_WEIGHTS`` / torch-cache lookup): FID/KID/precision/recall ``@inception``
    instead of the data's default space (image data only).
    ``cache`` (a dict kept by the caller) holds what does not change during training (the
    classifier and the real data's features), so periodic evaluation computes them once.
    """
    cache = {} if cache is None else cache
    dataset = trainer.dataset
    if getattr(trainer.config, "task", "generate") == "paired":  # the data's own protocol
        return dataset.evaluate(trainer, n=n, metrics=metrics)
    mixture = getattr(dataset, "mixture", None)
    if mixture is not None:
        samples = trainer.sample(PACGAN_NUM_SAMPLES, seed=12345).float().cpu()
        return evaluate(None, samples, metrics or ("modes",), space="data", mixture=mixture)
    space = feature_space(dataset, trainer)
    if inception is not None:
        return _evaluate_inception(trainer, n, metrics, cache, inception)
    if space == "mnist-classifier" and _name(dataset).startswith("stacked-mnist"):
        if "classifier" not in cache:
            cache["classifier"] = load_mnist_classifier()
        fake = trainer.sample(mode_samples, seed=12345).float().cpu()
        digits = cache["classifier"].predict_channels(fake)
        modes = 100 * digits[:, 0] + 10 * digits[:, 1] + digits[:, 2]
        return evaluate(None, None, metrics or ("stacked_modes",), space=space, fake_modes=modes,
                        num_modes=dataset.num_classes or 1000)
    if "real" not in cache:
        cache["real"] = _reference(dataset)
    real = cache["real"]
    fake = trainer.sample(n, seed=12345).float().cpu()
    if space in ("digits-classifier", "mnist-classifier"):
        if "classifier" not in cache:
            load = load_digits_classifier if space == "digits-classifier" else load_mnist_classifier
            cache["classifier"] = load()
            cache["real_features"] = cache["classifier"].embed(real.cpu())[0]
        fake_f, fake_logits = cache["classifier"].embed(fake)
        chosen = metrics or ("fid", "kid", "precision", "recall", "is", "class_coverage")
        return evaluate(cache["real_features"], fake_f, chosen, space=space,
                        fake_logits=fake_logits, options=_FAST)
    chosen = metrics or ("fid", "kid", "precision", "recall")
    net = trainer.metric_net
    if net is None:  # feature-matching-only runs have no metric network: compare raw samples
        return evaluate(real.flatten(1).float(), fake.flatten(1), chosen, space="pixels", options=_FAST)
    was_training = net.training
    net.eval()
    real_e, fake_e = _embed(net, real, trainer.device), _embed(net, fake, trainer.device)
    net.train(was_training)
    return evaluate(real_e, fake_e, chosen, space="metric-net", options=_FAST)


def _evaluate_inception(trainer, n, metrics, cache, weights) -> dict[str, float]:
    """FID/KID/precision/recall (+ IS when asked) on Inception-v3 pool features."""
    if not getattr(trainer.dataset, "is_image", True):
        raise ValueError("inception= evaluates images; this run's data are points.")
    if "inception" not in cache:
        cache["inception"] = load_inception(None if weights == "env" else weights, device=trainer.device)
        real = _reference(trainer.dataset)
        if real.shape[0] > 10_000:  # a fixed subset keeps the CPU cost bounded
            real = real[torch.randperm(real.shape[0], generator=torch.Generator().manual_seed(0))[:10_000]]
        cache["inception_real"] = _embed(cache["inception"].features, real, trainer.device, 64)
    net = cache["inception"]
    fake = trainer.sample(n, seed=12345).float().cpu()
    chosen = metrics or ("fid", "kid", "precision", "recall")
    fake_f = _embed(net.features, fake, trainer.device, 64)
    logits = _embed(net.logits, fake, trainer.device, 64) if "is" in chosen else None
    return evaluate(cache["inception_real"], fake_f, chosen, space="inception", fake_logits=logits,
                    options=_FAST)


def default_evaluator(config=None, n: int | None = None) -> Callable[[object], dict[str, float]]:
    """The evaluation used by `mvm train` (sample count from ``config.eval_samples``), with a
    cache that lives as long as the returned function."""
    count = n or (getattr(config, "eval_samples", None) or 2000)
    cache: dict = {}
    return lambda trainer: evaluate_trainer(trainer, n=count, cache=cache)
