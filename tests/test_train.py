"""Training: a smoke run lowers the loss, writes loadable weights, and resumes exactly."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from iislib import train as T
from iislib.loop import run
from iislib.robots import get_robot
from tests.conftest import synthetic_pair


def write_training_root(root: Path, n: int = 6) -> Path:
    """A stand-in for ../shared/data with a tiny Weizmann-like horse set."""
    from PIL import Image

    folder = root / "train_weizmann_horses"
    for sub in ("images", "masks", "gray"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        image, gt = synthetic_pair(72, 80, seed=10 + i)
        Image.fromarray(image).save(folder / "images" / f"horse{i:03d}.jpg", quality=95)
        Image.fromarray((gt * 255).astype(np.uint8)).save(folder / "masks" / f"horse{i:03d}.jpg")
    return root


@pytest.fixture(scope="module")
def train_root(tmp_path_factory) -> Path:
    return write_training_root(tmp_path_factory.mktemp("data"))


SMOKE = replace(T.RECIPES["smoke"], steps=4, checkpoint_every=2)


@pytest.mark.parametrize("name", ["ritm-compact", "gto99-compact"])
def test_smoke_training_writes_loadable_weights(name, train_root, tmp_path):
    path = T.train(name, train_root, tmp_path, SMOKE, sets=("horses",), progress=False)
    assert path == tmp_path / f"{name}.pt" and path.is_file()
    model = T.load_compact(path)
    image, gt = synthetic_pair(64, 64)
    traj = run(model, get_robot("rgto99"), image, gt, max_clicks=2)
    assert traj.iou.shape == (2,)
    state = torch.load(tmp_path / f"{name}.ckpt", weights_only=False)
    assert state["step"] == 4 and len(state["losses"]) == 4
    assert model.config["load_average"] >= 0 and "load average" in model.config["machine_note"]
    T.annotate(path, machine_note="trained alone")
    assert T.load_compact(path).config["machine_note"] == "trained alone"


def test_training_lowers_the_loss(train_root, tmp_path):
    recipe = replace(T.RECIPES["smoke"], steps=30, batch_size=4, crop=64, lr=2e-3,
                     checkpoint_every=30, max_iters=0)  # fmt: skip
    T.train("ritm-compact", train_root, tmp_path, recipe, sets=("horses",), progress=False)
    losses = torch.load(tmp_path / "ritm-compact.ckpt", weights_only=False)["losses"]
    assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:5])


@pytest.mark.parametrize("name", ["ritm-compact", "gto99-compact"])
def test_resume_gives_the_same_weights_as_an_uninterrupted_run(name, train_root, tmp_path):
    a = T.train(name, train_root, tmp_path / "a", SMOKE, sets=("horses",), progress=False)
    partial = T.train(name, train_root, tmp_path / "b", SMOKE, sets=("horses",),
                      progress=False, stop_after=2)  # fmt: skip
    assert partial.suffix == ".ckpt"
    assert torch.load(partial, weights_only=False)["step"] == 2
    b = T.train(name, train_root, tmp_path / "b", SMOKE, sets=("horses",), progress=False)
    assert all(d == 0.0 for _, d in T.compare_weights(a, b))


def test_bad_names_and_files(tmp_path, train_root):
    with pytest.raises(ValueError, match="unknown compact model"):
        T.train("ritm-huge", train_root, tmp_path, SMOKE)
    bad = tmp_path / "x.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not an iislib compact-model file"):
        T.load_compact(bad)
    with pytest.raises(FileNotFoundError):
        T.load_compact(tmp_path / "missing.pt")
