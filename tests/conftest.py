import os

import pytest
import torch

# CI and developer machines have 2 cores; keep tests deterministic and light.
torch.set_num_threads(int(os.environ.get("MVM_TEST_THREADS", "2")))


@pytest.fixture
def rng() -> torch.Generator:
    return torch.Generator().manual_seed(0)
