import pytest
import torch

from mvm_core.metrics.inception import (
    ENV_VAR,
    WEIGHTS_NAME,
    InceptionFeatureExtractor,
    load_inception,
    resolve_inception_weights,
)


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No env var, and an empty torch cache: nothing to find."""
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    return tmp_path


@pytest.fixture(scope="module")
def random_weights(tmp_path_factory):
    """A randomly initialised torchvision Inception-v3 state dict saved as .pth (no download)."""
    from torchvision.models.inception import Inception3

    torch.manual_seed(0)
    net = Inception3(aux_logits=True, init_weights=False)
    path = tmp_path_factory.mktemp("inception") / WEIGHTS_NAME
    torch.save(net.state_dict(), path)
    return path, net


def test_missing_weights_fail_fast_with_instructions(offline):
    with pytest.raises(FileNotFoundError) as info:
        load_inception()
    message = str(info.value)
    assert WEIGHTS_NAME in message and ENV_VAR in message and "never downloads" in message
    with pytest.raises(FileNotFoundError, match="weights argument"):
        resolve_inception_weights(offline / "nope.pth")


def test_env_var_pointing_nowhere(offline, monkeypatch):
    monkeypatch.setenv(ENV_VAR, str(offline / "missing.pth"))
    with pytest.raises(FileNotFoundError, match=ENV_VAR):
        resolve_inception_weights()


def test_resolution_order(offline, monkeypatch, random_weights):
    path, _ = random_weights
    monkeypatch.setenv(ENV_VAR, str(path))
    assert resolve_inception_weights() == path
    cache = offline / "torch_home" / "hub" / "checkpoints" / WEIGHTS_NAME
    cache.parent.mkdir(parents=True)
    cache.write_bytes(b"")
    assert resolve_inception_weights() == path  # the env var wins over the cache
    monkeypatch.delenv(ENV_VAR)
    assert resolve_inception_weights() == cache


def test_features_from_local_weights(offline, monkeypatch, random_weights):
    path, net = random_weights
    monkeypatch.setenv(ENV_VAR, str(path))
    extractor = load_inception()
    assert isinstance(extractor, InceptionFeatureExtractor) and extractor.input_size == 299
    extractor.input_size = 75  # the smallest size Inception-v3 takes: keeps this test fast
    gray = torch.rand(2, 1, 32, 32) * 2 - 1  # 1-channel images are repeated to 3
    features = extractor.features(gray)
    assert features.shape == (2, 2048)
    out = extractor(gray)
    assert set(out) == {"pool", "logits"} and out["logits"].shape == (2, 1000)
    torch.testing.assert_close(out["pool"], features)
    # same numbers as torchvision's own forward on the [-1, 1] input, resized
    net.eval()
    x = torch.nn.functional.interpolate(
        gray.expand(-1, 3, -1, -1), size=(75, 75), mode="bilinear", align_corners=False
    )
    with torch.no_grad():
        torch.testing.assert_close(out["logits"], net(x), rtol=1e-4, atol=1e-4)
    assert not any(p.requires_grad for p in extractor.parameters())


def test_rejects_non_inception_state_dict(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"weight": torch.zeros(2)}, path)
    with pytest.raises(ValueError, match="not an Inception-v3 state dict"):
        load_inception(path)
