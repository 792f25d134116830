"""fold_batchnorm, and RITM's folded inference copy of its network."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from iislib.clicks import Click
from iislib.models.fold import fold_batchnorm
from iislib.models.ritm import RITM


def _randomise_batchnorms(net: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial running statistics and affine parameters, so that folding has work to do."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.running_mean.copy_(torch.randn(c, generator=g))
                m.running_var.copy_(torch.rand(c, generator=g) + 0.5)
                m.weight.copy_(torch.randn(c, generator=g))
                m.bias.copy_(torch.randn(c, generator=g))
    return net.eval()


class _Block(nn.Module):
    def __init__(self, reuse: bool = False) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(4)
        self.body = nn.Sequential(nn.Conv2d(4, 4, 1), nn.BatchNorm2d(4), nn.ReLU())
        self.reuse = reuse

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv1(x)
        z = self.body(self.bn1(y))
        return z + y if self.reuse else z  # reuse: conv1's output is used beyond bn1


def test_fold_replaces_batchnorms_and_keeps_outputs() -> None:
    net = _randomise_batchnorms(_Block())
    x = torch.randn(2, 3, 8, 8)
    folded = fold_batchnorm(net, x)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    assert isinstance(folded.bn1, nn.Identity) and isinstance(folded.body[1], nn.Identity)
    assert folded.conv1.bias is not None  # the BatchNorm's shift moved into the bias
    with torch.no_grad():
        torch.testing.assert_close(folded(x), net(x), rtol=1e-5, atol=1e-5)
    # the original is untouched
    assert isinstance(net.bn1, nn.BatchNorm2d) and net.conv1.bias is None


def test_fold_refuses_a_shared_convolution_output_and_training_mode() -> None:
    x = torch.randn(2, 3, 8, 8)
    with pytest.raises(RuntimeError, match="used beyond its BatchNorm"):
        fold_batchnorm(_randomise_batchnorms(_Block(reuse=True)), x)
    with pytest.raises(ValueError, match="eval mode"):
        fold_batchnorm(_Block().train(), x)


def _inputs(h: int = 64, w: int = 48, n: int = 3):
    rng = np.random.default_rng(0)
    images = [rng.random((h, w, 3), dtype=np.float32) for _ in range(n)]
    clicks = [[Click(10 + i, 12, True), Click(40, 30 - i, False)] for i in range(n)]
    prevs = [rng.random((h, w), dtype=np.float32) for _ in range(n)]
    return images, clicks, prevs


def _unfolded_probs(model: RITM, images, clicks, prevs) -> np.ndarray:
    """What predict_batch gave before folding: the sigmoid of the net itself."""
    from iislib.models.ritm import points_tensor

    x = torch.cat(
        [
            torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2),
            torch.from_numpy(np.stack(prevs))[:, None],
        ],
        1,
    ).contiguous(memory_format=torch.channels_last)
    pts = points_tensor([[(c.row, c.col, c.positive) for c in cl] for cl in clicks])
    with torch.no_grad():
        return torch.sigmoid(model.net(x, pts)["instances"][:, 0]).numpy()


def test_ritm_predicts_with_a_folded_copy_that_follows_its_net() -> None:
    torch.manual_seed(0)
    model = RITM(pretrained=False, variant="compact")
    _randomise_batchnorms(model.net)
    images, clicks, prevs = _inputs()
    got = np.stack(model.predict_batch(images, clicks, prevs))
    np.testing.assert_allclose(got, _unfolded_probs(model, images, clicks, prevs), atol=1e-5)
    folded = model._folded[3]
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.net.modules())  # net itself kept

    # new weights in place (as load_state_dict does): the copy is rebuilt
    with torch.no_grad():
        model.net.feature_extractor.cls_head.bias.add_(1.0)  # logits + 1
    again = np.stack(model.predict_batch(images, clicks, prevs))
    assert np.abs(again - got).max() > 0.05
    np.testing.assert_allclose(again, _unfolded_probs(model, images, clicks, prevs), atol=1e-5)
    assert model._folded[3] is not folded

    # a replaced net (as iislib.train.wrap does) is folded anew
    model.net = _randomise_batchnorms(RITM(pretrained=False, variant="compact").net, seed=1)
    third = np.stack(model.predict_batch(images, clicks, prevs))
    np.testing.assert_allclose(third, _unfolded_probs(model, images, clicks, prevs), atol=1e-5)
