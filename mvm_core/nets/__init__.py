"""Small built-in generators and metric networks."""

from .dcgan import DCGANGenerator, DCGANMetricNet
from .mlp import MLPGenerator, MLPMetricNet

__all__ = ["DCGANGenerator", "DCGANMetricNet", "MLPGenerator", "MLPMetricNet"]
