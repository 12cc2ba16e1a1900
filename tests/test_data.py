import numpy as np
import pytest
import torch

from mvm_core.data import (
    BatchSource,
    GenerativeDataset,
    digits_dataset,
    grid,
    grid_dataset,
    image_folder_dataset,
    ring,
    tensor_dataset,
)
from mvm_core.nets import MLPGenerator, MLPMetricNet
from mvm_core.trainer import TrainConfig, Trainer


def test_mixtures_follow_the_literature():
    r, g = ring(), grid()
    assert r.num_modes == 8 and r.std == 0.01
    torch.testing.assert_close(r.means[2], torch.tensor([0.0, 1.0]), atol=1e-6, rtol=0)
    assert g.num_modes == 25 and g.std == 0.05
    assert sorted(set(g.means[:, 0].tolist())) == [-4.0, -2.0, 0.0, 2.0, 4.0]
    points = grid_dataset(n=5000, seed=0).data
    nearest = torch.cdist(points, g.means).min(dim=1).values
    assert nearest.max() < 6 * 0.05 * 2**0.5  # every point within a few std of a mode


def test_custom_mixtures_through_data_kwargs():
    from mvm_core.build import build_dataset
    from mvm_core.runconfig import build_run_config

    config = build_run_config({}, {"data": "ring", "data_kwargs": {"num_modes": 4, "std": 0.02,
                                                                   "weights": [1, 1, 1, 5]}})
    data = build_dataset(config)
    assert data.mixture.num_modes == 4 and data.mixture.std == 0.02
    torch.testing.assert_close(data.mixture.probs, torch.tensor([0.125, 0.125, 0.125, 0.625]))
    nearest = torch.cdist(data.data, data.mixture.means).argmin(dim=1)
    assert abs((nearest == 3).float().mean().item() - 0.625) < 0.01  # the priors are sampled
    config = build_run_config({}, {"data": "grid", "data_kwargs": {"sides": 4}})
    with pytest.raises(ValueError, match="take side, spacing, std, weights"):
        build_dataset(config)
    with pytest.raises(ValueError, match="takes none"):
        build_dataset(build_run_config({}, {"data": "digits", "data_kwargs": {"x": 1}}))


def test_digits_convention_and_upsampling():
    d8, d32 = digits_dataset(8), digits_dataset(32)
    assert d8.sample_shape == (1, 8, 8) and d32.sample_shape == (1, 32, 32)
    assert d8.data.min() == -1 and d8.data.max() == 1 and d8.num_classes == 10
    with pytest.raises(ValueError, match="image_size must be one of"):
        digits_dataset(12)


def test_image_folder_with_class_subfolders(tmp_path):
    from PIL import Image
    from skimage import data as skdata

    for cls, img in (("astronaut", skdata.astronaut()), ("coffee", skdata.coffee())):
        (tmp_path / cls).mkdir()
        Image.fromarray(img).save(tmp_path / cls / "a.png")
        Image.fromarray(img[::-1]).save(tmp_path / cls / "b.jpg")
    ds = image_folder_dataset(tmp_path, image_size=16)
    assert ds.data.shape == (4, 3, 16, 16) and ds.num_classes == 2
    assert -1 <= ds.data.min() and ds.data.max() <= 1
    with pytest.raises(FileNotFoundError, match="does not exist"):
        image_folder_dataset(tmp_path / "missing")


def test_tensor_and_numpy_inputs_and_errors():
    ds = tensor_dataset(np.random.rand(10, 3).astype("float32"), labels=np.arange(10) % 2)
    assert ds.num_classes == 2 and ds.data.dtype == torch.float32
    with pytest.raises(TypeError, match="floating point"):
        tensor_dataset(np.ones((10, 2), dtype=np.int64))
    with pytest.raises(ValueError, match="shape \\(N, D\\) for points or \\(N, C, H, W\\)"):
        tensor_dataset(torch.zeros(10, 2, 2))
    with pytest.raises(ValueError, match="NaN or inf"):
        tensor_dataset(torch.tensor([[0.0, float("nan")], [1.0, 1.0]]))


def test_batches_are_reproducible_and_resumable():
    ds = GenerativeDataset(torch.arange(20.0)[:, None])
    a = BatchSource(ds, 6, seed=3)
    first = [next(a)[0] for _ in range(4)]  # crosses an epoch boundary (3 full batches per epoch)
    state = a.state_dict()
    rest = [next(a)[0] for _ in range(3)]
    b = BatchSource(ds, 6, seed=3)
    assert all(torch.equal(x, next(b)[0]) for x in first)
    c = BatchSource(ds, 6, seed=99)
    c.load_state_dict(state)
    assert all(torch.equal(x, next(c)[0]) for x in rest)
    epoch = torch.cat([next(BatchSource(ds, 6, seed=1))[0] for _ in range(1)])
    assert len(set(epoch.flatten().tolist())) == 6  # no repeats inside a batch


class PlainDataset(torch.utils.data.Dataset):
    """Any torch Dataset: items (x, y) read one by one."""

    def __init__(self):
        self.x = torch.randn(64, 2)

    def __len__(self):
        return 64

    def __getitem__(self, i):
        return self.x[i], 0


def test_trainer_accepts_any_torch_dataset():
    torch.manual_seed(0)
    trainer = Trainer(MLPGenerator(hidden=16, depth=1), MLPMetricNet(emb_dim=4, hidden=16, depth=1),
                      PlainDataset(), TrainConfig(steps=3, batch_size=16, log_every=1, device="cpu"))
    history = trainer.fit()
    assert len(history) == 3 and all(np.isfinite(r["matching"]) for r in history)
