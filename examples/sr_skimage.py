"""Super-resolution x2 by manifold matching on scikit-image's bundled photos, on CPU, offline.

What it does, in the Python API (the command line equivalent is ``mvm train --preset sr``):

1. data: random 32 px crops of the bundled photos as targets, their bicubic 16 px versions as
   inputs (``sr:skimage`` from the mvm-core-sr plugin); camera, chelsea and rocket held out;
2. networks: an SRResNet-style generator (low-res -> high-res) and a patch metric network;
3. paired training (``task="paired"``): each step runs ``G`` on the low-res crops, adds the pixel
   L1 distance to each crop's own target (``mvm:ContentLoss``) to manifold matching of the
   high-res patches in the learned metric (``--gan`` uses a GAN's objectives instead);
4. evaluation: PSNR and SSIM on Y over the whole held-out photos, against bicubic upsampling.

Run::

    .venv/bin/python examples/sr_skimage.py --steps 100          # about 2-4 minutes on one core
    .venv/bin/python examples/sr_skimage.py --steps 100 --gan
"""

from __future__ import annotations

import argparse
import time

import torch

from mvm_core.build import build_trainer
from mvm_core.runconfig import build_run_config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--gan", action="store_true", help="L1 + GAN instead of L1 + manifold matching")
    parser.add_argument("--out", default="runs/sr-example", help="run folder (samples.png, checkpoint)")
    args = parser.parse_args()
    torch.set_num_threads(1)

    # the `sr` preset: task="paired", data sr:skimage, sr:SRResNet, sr:PatchMetricNet, L1 weight
    config = build_run_config(overrides={"preset": "sr", "steps": args.steps, "device": "cpu",
                                         "method": "gan" if args.gan else "mvm"})
    trainer = build_trainer(config, run_dir=args.out)
    print(f"data {trainer.dataset.name}: {len(trainer.dataset.hr)} training photos, crops"
          f" {trainer.dataset.input_shape} -> {trainer.dataset.sample_shape}")

    start = time.time()
    history = trainer.fit()
    print(f"trained {trainer.state.step} steps in {time.time() - start:.0f} s;"
          f" last L1 {history[-1]['mvm:ContentLoss']:.4f}")

    # whole held-out photos: the model vs bicubic (PSNR/SSIM on Y, border = scale)
    for key, value in trainer.dataset.evaluate(trainer, metrics=("psnr", "ssim")).items():
        print(f"  {key:16s} {value:.4f}")

    # super-resolve any low-res image tensor (N, C, h, w) in [-1, 1]
    lr = trainer.dataset.test_lr[1][None]  # chelsea, 150 x 225
    sr = trainer.predict(lr)
    print(f"predict: {tuple(lr.shape)} -> {tuple(sr.shape)}")
    trainer.save_checkpoint()


if __name__ == "__main__":
    main()
