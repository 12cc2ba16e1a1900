"""Evaluate a trainer's generator in the right feature space for its data.

* 2D mixtures: PacGAN mode coverage on 2,500 samples (modes, high-quality share, reverse KL);
* digits: the project's digits classifier (``@digits-classifier``): FID, KID, precision/recall,
  Inception score and class coverage from its logits;
* anything else: the run's own metric network (``@metric-net``), FID, KID, precision/recall.

Samples use a fixed seed, so evaluating never changes the training's random stream.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .metrics import PACGAN_NUM_SAMPLES, evaluate, load_digits_classifier

# KID over 10 subsets (not the paper's 100): the mean is unbiased either way, the std is coarser,
# and evaluation during training stays a small fraction of a step budget.
_FAST = {"kid_subsets": 10}


@torch.no_grad()
def evaluate_trainer(trainer, n: int = 2000, metrics: tuple[str, ...] | None = None) -> dict[str, float]:
    """Quality of ``trainer``'s (EMA) generator against its training data."""
    dataset = trainer.dataset
    mixture = getattr(dataset, "mixture", None)
    if mixture is not None:
        samples = trainer.sample(PACGAN_NUM_SAMPLES, seed=12345).float().cpu()
        return evaluate(None, samples, metrics or ("modes",), space="data", mixture=mixture)
    real = dataset.data if hasattr(dataset, "data") else torch.stack([dataset[i][0] for i in range(len(dataset))])
    fake = trainer.sample(n, seed=12345).float().cpu()
    if getattr(dataset, "name", "").startswith("digits"):
        classifier = load_digits_classifier()
        real_f, _ = classifier.embed(real.cpu())
        fake_f, fake_logits = classifier.embed(fake)
        chosen = metrics or ("fid", "kid", "precision", "recall", "is", "class_coverage")
        return evaluate(real_f, fake_f, chosen, space="digits-classifier", fake_logits=fake_logits,
                        options=_FAST)
    net = trainer.metric_net
    was_training = net.training
    net.eval()
    embed = [net(real[i : i + 512].to(trainer.device)).float().cpu() for i in range(0, len(real), 512)]
    fake_e = [net(fake[i : i + 512].to(trainer.device)).float().cpu() for i in range(0, len(fake), 512)]
    net.train(was_training)
    return evaluate(torch.cat(embed), torch.cat(fake_e), metrics or ("fid", "kid", "precision", "recall"),
                    space="metric-net", options=_FAST)


def default_evaluator(config=None, n: int | None = None) -> Callable[[object], dict[str, float]]:
    """The evaluation used by `mvm train` (sample count from ``config.eval_samples``)."""
    count = n or (getattr(config, "eval_samples", None) or 2000)
    return lambda trainer: evaluate_trainer(trainer, n=count)
