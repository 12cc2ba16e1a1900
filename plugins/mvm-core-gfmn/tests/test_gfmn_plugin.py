"""Registration through mvm-core's plugin hooks and the gfmn:FeatureMatching factory."""

from __future__ import annotations

import pytest
import torch
from mvm_core.registry import (
    create_feature_extractor,
    create_regularizer,
    list_feature_extractors,
    list_regularizers,
)

import mvm_core_gfmn
from mvm_core_gfmn import GFMNTerm, TinyConvFeatures


def test_names_are_registered_under_the_gfmn_prefix():
    assert list_feature_extractors("gfmn:*") == [
        "gfmn:digits-classifier", "gfmn:resnet18", "gfmn:tiny", "gfmn:vgg19"]
    assert list_regularizers("gfmn:*") == ["gfmn:FeatureMatching"]
    tiny = create_feature_extractor("gfmn:tiny", widths=(4,), seed=2)
    assert isinstance(tiny, TinyConvFeatures) and tiny.layers == ("conv1",)
    vgg = create_feature_extractor("gfmn:vgg19", weights=None, layers=["relu1_1"], input_size=32)
    assert vgg.selected == ("relu1_1",)


def test_public_api_is_importable_lazily():
    assert set(mvm_core_gfmn.__all__) == set(mvm_core_gfmn._EXPORTS) | {"__version__"}
    for name in mvm_core_gfmn._EXPORTS:
        assert getattr(mvm_core_gfmn, name) is not None


def test_feature_matching_factory_on_a_tensor_caches_statistics(tmp_path):
    from mvm_core.data import digits_dataset

    dataset = digits_dataset(8, labels=True)
    term = create_regularizer("gfmn:FeatureMatching", data=dataset, extractors="gfmn:tiny",
                              extractor_kwargs={"widths": (4, 8)}, cache_dir=tmp_path,
                              batch_size=500)
    assert isinstance(term, GFMNTerm) and term.real_statistics[0].count == 1797
    assert len(list(tmp_path.glob("*.safetensors"))) == 1
    again = create_regularizer("gfmn:FeatureMatching", data=dataset.data,
                               extractors=["gfmn:tiny"], extractor_kwargs=[{"widths": (4, 8)}],
                               cache_dir=tmp_path, estimator="ma")
    assert len(list(tmp_path.glob("*.safetensors"))) == 1  # same content hash: reused
    torch.testing.assert_close(again.real_statistics[0].mean["conv2"],
                               term.real_statistics[0].mean["conv2"])
    value = term.loss(dataset.data[:16])
    assert value.ndim == 0 and torch.isfinite(value)


def test_feature_matching_factory_errors():
    with pytest.raises(ValueError, match="one mapping per extractor"):
        mvm_core_gfmn.feature_matching(torch.zeros(4, 1, 8, 8), ["gfmn:tiny", "gfmn:tiny"],
                                       extractor_kwargs=[{}])
    with pytest.raises(ValueError, match=r"must hold images \(N, C, H, W\)"):
        mvm_core_gfmn.feature_matching(torch.zeros(4, 64), "gfmn:tiny")
    with pytest.raises(TypeError, match="registry names"):
        mvm_core_gfmn.feature_matching(torch.zeros(4, 1, 8, 8), [3])


def test_term_on_a_step_context_built_like_the_trainer_builds_it(tmp_path):
    from mvm_core.testing import make_step_context

    images = torch.rand(64, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1
    term = mvm_core_gfmn.feature_matching(images, "gfmn:tiny", cache_dir=tmp_path)
    ctx = make_step_context(batch_size=8, sample_shape=(1, 8, 8))
    term(ctx).backward()
    grads = [p.grad for p in ctx.generator.parameters()]
    assert all(g is not None for g in grads) and sum(g.abs().sum() for g in grads) > 0
    assert set(term.last_terms) == {"gfmn/matching", "gfmn/TinyConvFeatures/conv1",
                                    "gfmn/TinyConvFeatures/conv2"}


def test_readme_first_example_runs(tmp_path, capsys):
    import re
    from pathlib import Path

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    code = re.findall(r"```python\n(.*?)```", readme, re.S)[0]
    code = code.replace("range(3000)", "range(2)")
    generator = torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.Tanh(),
                                    torch.nn.Unflatten(1, (1, 8, 8)))
    namespace = {"generator": generator}
    exec(compile(code, "README.md", "exec"), namespace)
    term = namespace["term"]
    assert isinstance(term, GFMNTerm) and int(term.state_dict()[
        "DigitsClassifierFeatures/features/mean/step"]) == 2
    assert len(list((tmp_path / "mvm_cache" / "gfmn").glob("*.json"))) == 1
