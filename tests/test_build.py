"""The network contract of the builder: what registry factories receive, and shape checks at build."""

import re
from pathlib import Path

import pytest
import torch
from torch import nn

from mvm_core import hookimpl
from mvm_core.build import build_networks, build_trainer, check_networks
from mvm_core.data import digits_dataset, ring_dataset
from mvm_core.nets import DCGANGenerator, DCGANMetricNet, MLPGenerator, MLPMetricNet
from mvm_core.runconfig import build_run_config

pytest_plugins = ["mvm_core.testing"]

DOCS = Path(__file__).resolve().parents[1] / "docs" / "plugins.md"


class Recorder:
    """Factories that record the keyword arguments the builder gives them."""

    def __init__(self):
        self.calls = {}

    @hookimpl
    def mvm_register_generators(self, register):
        def sized(z_dim, width=1, depth=1, image_size=32, channels=3, num_classes=None):
            self.calls["sized"] = dict(z_dim=z_dim, width=width, depth=depth, image_size=image_size,
                                       channels=channels, num_classes=num_classes)
            return DCGANGenerator(z_dim, image_size, channels, width=width, num_classes=num_classes)

        def points(z_dim, out_dim=5, depth=1, **kwargs):
            self.calls["points"] = dict(z_dim=z_dim, out_dim=out_dim, depth=depth, **kwargs)
            return MLPGenerator(z_dim, out_dim, hidden=8, depth=depth)

        def fixed(z_dim):  # declares nothing: always 16 x 16 RGB
            self.calls["fixed"] = dict(z_dim=z_dim)
            return DCGANGenerator(z_dim, 16, 3, width=8)

        register("rec:Sized", sized)
        register("rec:Points", points)
        register("rec:Fixed", fixed)

    @hookimpl
    def mvm_register_backbones(self, register):
        def metric(emb_dim, in_dim=7, width=1, depth=1):
            self.calls["metric"] = dict(emb_dim=emb_dim, in_dim=in_dim, width=width, depth=depth)
            return MLPMetricNet(in_dim, emb_dim, hidden=width, depth=depth)

        def image_metric(emb_dim, image_size=32, channels=3):
            self.calls["image_metric"] = dict(emb_dim=emb_dim, image_size=image_size, channels=channels)
            return DCGANMetricNet(image_size, channels, emb_dim, width=8)

        register("rec:Metric", metric)
        register("rec:ImageMetric", image_metric)


@pytest.fixture
def recorder(mvm_register_plugin):
    plugin = Recorder()
    mvm_register_plugin(plugin, "rec")
    return plugin


def _config(**values):
    return build_run_config({}, {"device": "cpu", **values})


def test_declared_sizes_reach_registry_factories(recorder):
    config = _config(data="digits", generator="rec:Sized", metric_net="rec:ImageMetric", width=16,
                     depth=2, z_dim=5, emb_dim=6, conditional=True)
    g, m = build_networks(config, digits_dataset(8))
    assert recorder.calls["sized"] == dict(z_dim=5, width=16, depth=2, image_size=8, channels=1,
                                           num_classes=10)
    assert recorder.calls["image_metric"] == dict(emb_dim=6, image_size=8, channels=1)
    config = _config(data="ring", generator="rec:Points", metric_net="rec:Metric", width=12, depth=1)
    build_networks(config, ring_dataset(n=64))
    # out_dim and depth declared; width is not, and a **kwargs catch-all receives nothing implicit
    assert recorder.calls["points"] == dict(z_dim=2, out_dim=2, depth=1)
    assert recorder.calls["metric"] == dict(emb_dim=10, in_dim=2, width=12, depth=1)


def test_explicit_kwargs_win_over_the_implied_sizes(recorder):
    config = _config(data="digits", generator="rec:Sized", generator_kwargs={"width": 4})
    build_networks(config, digits_dataset(8))
    assert recorder.calls["sized"]["width"] == 4 and recorder.calls["sized"]["image_size"] == 8


def test_builtin_registry_networks_are_sized_for_the_data():
    config = _config(data="digits", generator="mvm:DCGANGenerator", metric_net="mvm:DCGANMetricNet",
                     steps=1, batch_size=8, width=8)
    trainer = build_trainer(config)
    assert trainer.generator(torch.zeros(2, trainer.generator.z_dim)).shape == (2, 1, 8, 8)
    trainer.fit()  # and the run trains


def test_a_generator_that_does_not_fit_the_data_fails_at_build(recorder):
    config = _config(data="digits", generator="rec:Fixed")
    with pytest.raises(ValueError, match=re.escape("samples of shape (3, 16, 16) but the data's samples"
                                                   " have shape (1, 8, 8)")):
        build_trainer(config)


def test_a_metric_net_that_does_not_fit_the_data_fails_at_build(recorder):
    config = _config(data="ring", metric_net="rec:Metric", metric_net_kwargs={"in_dim": 3})
    with pytest.raises(ValueError, match=r"cannot take the data's samples of shape \(2,\)"):
        build_trainer(config)


def test_check_networks_names_bad_embeddings_and_a_missing_z_dim():
    data = ring_dataset(n=16)
    g = MLPGenerator(2, 2, hidden=4, depth=1)
    with pytest.raises(ValueError, match=r"maps a batch of shape \(2, 2\) to \(2, 3, 1\)"):
        check_networks(g, nn.Sequential(nn.Linear(2, 3), nn.Unflatten(1, (3, 1))), data)
    no_z = nn.Linear(2, 2)
    with pytest.raises(TypeError, match="needs a `z_dim` attribute"):
        check_networks(no_z, None, data)
    broken = MLPGenerator(3, 2, hidden=4, depth=1)
    broken.z_dim = 4  # claims a latent size its first layer does not take
    with pytest.raises(ValueError, match=r"fails on latent codes of shape \(2, 4\)"):
        check_networks(broken, None, data)


def test_the_check_changes_no_state():
    data = digits_dataset(8)
    g, m = DCGANGenerator(8, 8, 1, width=8), DCGANMetricNet(8, 1, 4, width=8)
    g.train()
    before = {k: v.clone() for k, v in g.state_dict().items()}
    rng = torch.random.get_rng_state()
    check_networks(g, m, data)
    assert torch.equal(torch.random.get_rng_state(), rng)
    assert g.training and m.training
    for key, value in g.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_the_docs_contract_example_runs(mvm_plugins):
    text = DOCS.read_text(encoding="utf-8")
    section = text[text.index("## Networks: the contract"):]
    block = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    exec(compile(block, "docs/plugins.md contract example", "exec"), {"__name__": "__docs__"})
    assert "tiny:ImageGenerator" in mvm_plugins.registry("generators")
