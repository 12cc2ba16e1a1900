import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    """The metrics tests are many small ops: one thread avoids oversubscribing a shared machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
