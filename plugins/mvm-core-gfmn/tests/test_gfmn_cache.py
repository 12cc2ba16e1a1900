"""The real-statistics cache: reuse without running the extractor, invalidation, location."""

from __future__ import annotations

import json

import pytest
import torch

from mvm_core_gfmn.cache import cached_real_statistics, default_cache_dir, statistics_key
from mvm_core_gfmn.tiny import TinyConvFeatures


class CountingTiny(TinyConvFeatures):
    calls = 0

    def extract(self, x):
        type(self).calls += 1
        return super().extract(x)


def _images(seed=0, n=20):
    return torch.rand(n, 1, 8, 8, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_second_call_reuses_the_cache_without_running_the_extractor(tmp_path):
    CountingTiny.calls = 0
    images = _images()
    first = cached_real_statistics(CountingTiny(), images.split(7), dataset_key="digits-test",
                                   cache_dir=tmp_path)
    assert CountingTiny.calls == 3  # batches of 7, 7, 6
    consumed = []

    def spy():
        consumed.append(True)
        yield from images.split(7)

    second = cached_real_statistics(CountingTiny(), spy(), dataset_key="digits-test",
                                    cache_dir=tmp_path)
    assert CountingTiny.calls == 3 and not consumed  # neither the extractor nor the data touched
    for layer in first.layers:
        assert torch.equal(first.mean[layer], second.mean[layer])
        assert torch.equal(first.var[layer], second.var[layer])
    assert second.count == 20
    files = sorted(p.suffix for p in tmp_path.iterdir())
    assert files == [".json", ".safetensors"]
    info = json.loads(next(tmp_path.glob("*.json")).read_text())
    assert info["dataset"] == "digits-test" and info["count"] == 20


def test_cache_invalidates_on_data_layers_preprocessing_and_weights(tmp_path):
    images = _images()
    CountingTiny.calls = 0

    def run(extractor, key="d1"):
        before = CountingTiny.calls
        cached_real_statistics(extractor, images.split(10), dataset_key=key, cache_dir=tmp_path)
        return CountingTiny.calls - before  # extractor calls: 0 = cache hit

    assert run(CountingTiny()) == 2
    assert run(CountingTiny()) == 0
    assert run(CountingTiny(), key="d2") == 2  # other dataset
    assert run(CountingTiny(layers=["conv1"])) == 2  # other layers
    assert run(CountingTiny(seed=1)) == 2  # other weights
    shifted = CountingTiny()
    shifted.mean = (0.4,)  # other normalization
    assert run(shifted) == 2
    resized = CountingTiny()
    resized.input_size = 16  # other input size
    assert run(resized) == 2
    assert run(CountingTiny()) == 0  # the original entry is still there
    assert len(list(tmp_path.glob("*.json"))) == 6


def test_refresh_and_corrupt_entries_recompute(tmp_path):
    images = _images()
    CountingTiny.calls = 0
    extractor = CountingTiny()
    cached_real_statistics(extractor, images.split(20), dataset_key="d", cache_dir=tmp_path)
    cached_real_statistics(extractor, images.split(20), dataset_key="d", cache_dir=tmp_path,
                           refresh=True)
    assert CountingTiny.calls == 2
    key, _ = statistics_key("d", extractor)
    (tmp_path / f"{key}.safetensors").write_bytes(b"not a safetensors file")
    with pytest.warns(UserWarning, match="unreadable GFMN statistics cache entry"):
        stats = cached_real_statistics(extractor, images.split(20), dataset_key="d",
                                       cache_dir=tmp_path)
    assert CountingTiny.calls == 3 and stats.count == 20


def test_default_cache_dir_honours_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("MVM_CORE_CACHE_DIR", str(tmp_path / "root"))
    assert default_cache_dir() == tmp_path / "root" / "gfmn"
    cached_real_statistics(TinyConvFeatures(), _images().split(10), dataset_key="env")
    assert len(list((tmp_path / "root" / "gfmn").glob("*.safetensors"))) == 1
    monkeypatch.delenv("MVM_CORE_CACHE_DIR")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "mvm-core" / "gfmn"


def test_dataset_key_must_be_a_nonempty_string():
    with pytest.raises(ValueError, match="dataset_key must be a non-empty string"):
        statistics_key("", TinyConvFeatures())
