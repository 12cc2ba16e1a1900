import math

import numpy as np
import pytest
import torch

from mvm_core.metrics.classifier_scores import class_coverage, inception_score


def brute_is(logits, splits):
    p = torch.softmax(logits.double(), 1).numpy()
    scores = []
    for part in np.array_split(p, splits):
        py = part.mean(0)
        kl = (part * (np.log(part) - np.log(py))).sum(1)
        scores.append(math.exp(kl.mean()))
    return float(np.mean(scores)), float(np.std(scores))


def test_inception_score_matches_numpy(rng):
    logits = torch.randn(100, 10, generator=rng) * 3
    mean, std = inception_score(logits, splits=10)
    bm, bs = brute_is(logits, 10)
    assert mean == pytest.approx(bm, rel=1e-10) and std == pytest.approx(bs, rel=1e-8)


def test_inception_score_extremes():
    confident_balanced = 100.0 * torch.eye(10).repeat(10, 1)  # every class, certain predictions
    assert inception_score(confident_balanced, splits=1)[0] == pytest.approx(10.0, rel=1e-9)
    one_class = 100.0 * torch.eye(10)[[3] * 50]
    assert inception_score(one_class, splits=5)[0] == pytest.approx(1.0, rel=1e-9)
    uniform = torch.zeros(20, 10)
    assert inception_score(uniform, splits=2) == (pytest.approx(1.0), 0.0)


def test_class_coverage():
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 2, 2, 3, 3])
    present, min_share = class_coverage(labels, num_classes=5)
    assert present == 4 / 5 and min_share == 0.0
    present, min_share = class_coverage(labels[:8], num_classes=3)  # shares 2/8, 2/8, 4/8
    assert present == 1.0 and min_share == pytest.approx(0.25 * 3)
    logits = torch.nn.functional.one_hot(labels, 4).float()
    assert class_coverage(logits) == (1.0, pytest.approx(0.2 * 4))


def test_bad_inputs():
    with pytest.raises(ValueError, match="splits must be an int"):
        inception_score(torch.zeros(5, 3), splits=6)
    with pytest.raises(ValueError, match="num_classes is required"):
        class_coverage(torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 1\]"):
        class_coverage(torch.tensor([0, 2]), num_classes=2)
    with pytest.raises(ValueError, match="finite"):
        inception_score(torch.tensor([[float("nan"), 0.0]]), splits=1)
