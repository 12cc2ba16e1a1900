"""Built-in plugin: the small networks of :mod:`mvm_core.nets` (``mvm:`` backbones and generators)."""

from __future__ import annotations

from ..hookspecs import hookimpl
from ..registry import Register


@hookimpl
def mvm_register_backbones(register: Register) -> None:
    from ..nets import DCGANMetricNet, MLPMetricNet

    register("mvm:MLPMetricNet", MLPMetricNet,
             description="MLP metric network for vectors (2D benchmarks): (B, in_dim) -> (B, emb_dim)")
    register("mvm:DCGANMetricNet", DCGANMetricNet,
             description="DCGAN-style conv metric network: images (B, C, S, S) -> (B, emb_dim)")


@hookimpl
def mvm_register_generators(register: Register) -> None:
    from ..nets import DCGANGenerator, MLPGenerator

    register("mvm:MLPGenerator", MLPGenerator,
             description="MLP generator for vectors (2D benchmarks): z (B, z_dim) -> (B, out_dim)")
    register("mvm:DCGANGenerator", DCGANGenerator,
             description="DCGAN generator: z (B, z_dim) -> images (B, C, S, S) in [-1, 1]")
