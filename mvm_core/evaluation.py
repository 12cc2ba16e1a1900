"""Evaluate a trainer's generator in the right feature space for its data.

* 2D mixtures: PacGAN mode coverage on 2,500 samples (modes, high-quality share, reverse KL);
* digits: the project's digits classifier (``@digits-classifier``): FID, KID, precision/recall,
  Inception score and class coverage from its logits;
* anything else: the run's own metric network (``@metric-net``), FID, KID, precision/recall;
* paired tasks (e.g. super-resolution): the dataset's ``evaluate(trainer, n, metrics)`` on its
  held-out pairs (:class:`mvm_core.data.PairedDataset`; the SR plugin reports PSNR/SSIM on Y).

Samples use a fixed seed, so evaluating never changes the training's random stream.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .metrics import PACGAN_NUM_SAMPLES, evaluate, load_digits_classifier

# KID over 10 subsets (not the paper's 100): the mean is unbiased either way, the std is coarser,
# and evaluation during training stays a small fraction of a step budget.
_FAST = {"kid_subsets": 10}


def _embed(fn, x: torch.Tensor, device, batch_size: int = 512) -> torch.Tensor:
    """``fn`` over ``x`` in batches on ``device``; float32 results on the CPU."""
    return torch.cat([fn(x[i : i + batch_size].to(device)).float().cpu() for i in range(0, len(x), batch_size)])


@torch.no_grad()
def evaluate_trainer(trainer, n: int = 2000, metrics: tuple[str, ...] | None = None,
                     cache: dict | None = None) -> dict[str, float]:
    """Quality of ``trainer``'s (EMA) generator against its training data.

    ``cache`` (a dict kept by the caller) holds what does not change during training (the digits
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
    if "real" not in cache:
        cache["real"] = dataset.data if hasattr(dataset, "data") else torch.stack(
            [dataset[i][0] for i in range(len(dataset))])
    real = cache["real"]
    fake = trainer.sample(n, seed=12345).float().cpu()
    if getattr(dataset, "name", "").startswith("digits"):
        if "classifier" not in cache:
            cache["classifier"] = load_digits_classifier()
            cache["real_features"] = cache["classifier"].embed(real.cpu())[0]
        fake_f, fake_logits = cache["classifier"].embed(fake)
        chosen = metrics or ("fid", "kid", "precision", "recall", "is", "class_coverage")
        return evaluate(cache["real_features"], fake_f, chosen, space="digits-classifier",
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


def default_evaluator(config=None, n: int | None = None) -> Callable[[object], dict[str, float]]:
    """The evaluation used by `mvm train` (sample count from ``config.eval_samples``), with a
    cache that lives as long as the returned function."""
    count = n or (getattr(config, "eval_samples", None) or 2000)
    cache: dict = {}
    return lambda trainer: evaluate_trainer(trainer, n=count, cache=cache)
