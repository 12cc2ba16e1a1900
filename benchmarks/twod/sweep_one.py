"""One library 2D run for the stage-3 sweep of PROGRESS.md: the `default` points preset + JSON
overrides -> one JSON line (modes, high-quality %, KL, quantiles of the distance of the samples to
their nearest mode in std units). Private keys: ``_ramp=[start_frac, end_frac, w]`` ramps the
Chamfer weight from 0 to ``w``; ``_chpow=p`` uses distance^p in the Chamfer term only;
``_plot=PATH`` saves a scatter plot of 2,500 samples.

    .venv/bin/python benchmarks/twod/sweep_one.py grid 0 '{"width": 400}' tag
"""

from __future__ import annotations

import json
import sys
import time

import torch

import mvm_core.set_matching as set_matching
from mvm_core.build import build_trainer
from mvm_core.evaluation import evaluate_trainer
from mvm_core.runconfig import build_run_config


class ChamferRamp:
    """Trainer callback: Chamfer weight 0 until ``start`` x steps, then linear to ``weight`` at ``end`` x steps."""

    def __init__(self, steps: int, start: float, end: float, weight: float):
        self.start, self.end, self.weight = start * steps, end * steps, weight

    def value(self, step: int) -> float:
        return self.weight * min(1.0, max(0.0, (step - self.start) / max(1.0, self.end - self.start)))

    def on_train_start(self, trainer) -> None:
        trainer.matching.weights["chamfer"] = self.value(0)

    def on_step_end(self, trainer, record) -> None:
        trainer.matching.weights["chamfer"] = self.value(record["step"])


def main() -> None:
    torch.set_num_threads(1)
    mixture, seed = sys.argv[1], int(sys.argv[2])
    overrides = json.loads(sys.argv[3] if len(sys.argv) > 3 else "{}")
    tag = sys.argv[4] if len(sys.argv) > 4 else ""
    private = {k: overrides.pop(k) for k in list(overrides) if k.startswith("_")}
    if "_chpow" in private:
        chamfer = set_matching.chamfer_distance
        set_matching.chamfer_distance = lambda r, f, power, eps: chamfer(r, f, private["_chpow"], eps)
    config = build_run_config({}, {"data": mixture, "seed": seed, "device": "cpu", "log_every": 50,
                                   "checkpoint_every": 0, **overrides})
    trainer = build_trainer(config)
    if "_ramp" in private:
        trainer.callbacks.append(ChamferRamp(config.steps, *private["_ramp"]))
    start = time.perf_counter()
    trainer.fit()
    seconds = time.perf_counter() - start
    metrics = evaluate_trainer(trainer)
    x = trainer.sample(2500, seed=12345).float().cpu()
    mix = trainer.dataset.mixture
    distance = torch.cdist(x.double(), mix.means.double()).min(1).values / mix.std
    levels = torch.tensor([0.25, 0.5, 0.75, 0.9, 0.95, 0.99], dtype=torch.float64)
    private["_q"] = [round(float(v), 2) for v in torch.quantile(distance, levels)]
    if "_plot" in private:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        plt.figure(figsize=(4, 4))
        plt.scatter(x[:, 0], x[:, 1], s=1)
        plt.savefig(private["_plot"], dpi=80)
    print(json.dumps({"tag": tag, "mix": mixture, "seed": seed, "modes": metrics["modes@data"],
                      "hq": round(100 * metrics["high_quality@data"], 1),
                      "kl": round(metrics["reverse_kl@data"], 4), "s": round(seconds, 1),
                      "over": {**overrides, **private}}), flush=True)


if __name__ == "__main__":
    main()
