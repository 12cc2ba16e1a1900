"""Shared fixtures: one thread, no network, every cache and weights folder inside tmp_path."""

from __future__ import annotations

import os

import pytest
import torch

torch.set_num_threads(int(os.environ.get("MVM_TEST_THREADS", "1")))


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path, monkeypatch):
    """No test reads or writes the user's caches or weights folders."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setenv("MVM_CORE_CACHE_DIR", str(tmp_path / "mvm_cache"))
    monkeypatch.delenv("MVM_CORE_WEIGHTS_DIR", raising=False)
    monkeypatch.setattr(torch.hub, "_hub_dir", None)  # let get_dir() read TORCH_HOME again

    def no_download(*args, **kwargs):
        raise AssertionError(f"a test tried to download {args[:1]}")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_download)
    return tmp_path
