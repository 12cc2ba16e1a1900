import pytest
import torch
from torch import nn

from mvm_core.nets import DCGANGenerator, DCGANMetricNet


@pytest.mark.parametrize("size,stages", [(8, 1), (16, 2), (32, 3), (64, 4)])
def test_stages_scale_with_the_image_size(size, stages):
    g = DCGANGenerator(z_dim=4, image_size=size, channels=3, width=8)
    m = DCGANMetricNet(image_size=size, channels=3, emb_dim=5, width=8)
    assert sum(isinstance(x, nn.ConvTranspose2d) for x in g.modules()) == stages  # 4 px -> size
    assert sum(isinstance(x, nn.Conv2d) for x in m.modules()) == stages  # size -> 4 px
    with torch.no_grad():
        images = g(torch.randn(3, 4))
    assert images.shape == (3, 3, size, size)
    assert float(images.abs().max()) <= 1.0
    assert m.features(images).shape[-2:] == (4, 4)
    assert m(images).shape == (3, 5)


def test_rejects_other_sizes():
    with pytest.raises(ValueError, match="image_size must be one of"):
        DCGANGenerator(image_size=28)
