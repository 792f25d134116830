"""One adapter per model family: training and prediction feed a network alike."""

from __future__ import annotations

import ast
import copy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from iislib.core.clicks import Click
from iislib.models.families import FAMILIES, get_family
from iislib.models.gto99 import click_map, remove_non_fg_connected

MODELS_DIR = Path(__file__).resolve().parents[1] / "iislib" / "models"


@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _batch(seed: int = 0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (2, 64, 96, 3), dtype=np.uint8).astype(np.float32) / 255
    clicks = [
        [Click(30, 40, True), Click(10, 80, False), Click(50, 20, True)],
        [Click(5, 5, True), Click(60, 90, False)],
    ]
    prevs = rng.random((2, 64, 96)).astype(np.float32)
    return images, clicks, prevs


def _net(name: str) -> torch.nn.Module:
    fam = get_family(name)
    torch.manual_seed(0)
    net = fam.build_net(fam.compact_arch())
    if name == "gto99":
        with torch.no_grad():
            # alpha in (0, 1) before the clamps, which only inference applies (training skips
            # them so that wrong pixels beyond [0, 1] get a gradient)
            net.decoder.conv_up4[4].weight.mul_(0.05)
            net.decoder.conv_up4[4].bias.fill_(0.6)
    return net.eval()


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_training_forward_equals_the_inference_forward(name, one_thread) -> None:
    fam = get_family(name)
    net = _net(name)
    images, clicks, prevs = _batch()
    with torch.no_grad():
        main, _ = fam.forward_train(net, images, clicks, prevs)
    train_probs = fam.probabilities(main)
    assert train_probs.shape == (2, 64, 96) and train_probs.dtype == np.float32
    # the plain inference path, on the same weights and inputs
    model = fam.wrap(copy.deepcopy(net), fast=False)
    got = np.stack(model.predict_batch(list(images), clicks, list(prevs)))
    if name == "gto99":  # inference post-processing: click pixels forced, then cleaned
        want = []
        for alpha, cl in zip(train_probs, clicks, strict=True):
            cmap = click_map(alpha.shape, cl)
            alpha = alpha.copy()
            alpha[cmap[:, :, 0] == 1] = 0
            alpha[cmap[:, :, 1] == 1] = 1
            want.append(remove_non_fg_connected(alpha, cmap[:, :, 1]))
        train_probs = np.stack(want)
    assert 0.05 < float(np.mean((got > 0.01) & (got < 0.99)))  # soft maps: the test has teeth
    np.testing.assert_array_equal(got, train_probs)
    # another previous map gives another output (the comparison is not vacuous)
    with torch.no_grad():
        other, _ = fam.forward_train(net, images, clicks, prevs[::-1].copy())
    assert not np.array_equal(fam.probabilities(other), fam.probabilities(main))


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_both_layouts_of_the_inputs_hold_the_same_values(name) -> None:
    fam = get_family(name)
    net = _net(name)
    images, clicks, prevs = _batch(1)
    plain = fam.inputs(net, images, clicks, prevs)
    fast = fam.inputs(net, images, clicks, prevs, channels_last=True)
    assert len(plain) == len(fast)
    for a, b in zip(plain, fast, strict=True):
        assert torch.equal(a, b)
        if a.dim() == 4:  # image-like: NCHW for the plain path, NHWC for the fast one
            assert a.is_contiguous() and b.is_contiguous(memory_format=torch.channels_last)


def test_the_adapters_and_their_errors() -> None:
    assert set(FAMILIES) == {"ritm", "gto99"}
    assert all(get_family(n).name == n for n in FAMILIES)
    with pytest.raises(ValueError, match="unknown model family 'deeplab'; known: ritm, gto99"):
        get_family("deeplab")
    fam = get_family("gto99")
    images, clicks, prevs = _batch()
    with pytest.raises(ValueError, match="multiples of 32, got 64x80"):
        fam.forward_train(_net("gto99"), images[:, :, :80], clicks, prevs[:, :, :80])


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_nothing_in_models_imports_training() -> None:
    for path in MODELS_DIR.glob("*.py"):
        bad = {
            m
            for m in _imports(path)
            if m == "iislib.training.train" or m.startswith("iislib.training.train.")
        }
        assert not bad, f"{path.name} imports {bad}"


def test_importing_the_registry_does_not_import_torch() -> None:
    code = "import sys, iislib.models, iislib.core.loop; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
