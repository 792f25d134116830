"""Shared fixtures: small synthetic images and the benchmark data root."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("MPLBACKEND", "Agg")


def pytest_configure(config):
    try:
        import torch

        # Two cores: one thread per test process keeps tests predictable.
        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover
        pass


def synthetic_pair(h: int = 40, w: int = 50, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A bright ellipse on a noisy dark background: uint8 (h, w, 3) image and bool (h, w) mask."""
    rng = np.random.default_rng(seed)
    rr, cc = np.indices((h, w))
    gt = ((rr - h / 2) / (h / 3)) ** 2 + ((cc - w / 2.5) / (w / 4)) ** 2 <= 1
    image = np.where(gt[..., None], 200, 40) + rng.normal(0, 10, (h, w, 3))
    return np.clip(image, 0, 255).astype(np.uint8), gt


def write_folder_dataset(folder: Path, n: int = 3, h: int = 40, w: int = 50) -> Path:
    """A dataset in the RITM layout (images/*.png, masks/*.png with 0/255) of ``n`` pairs."""
    from PIL import Image

    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "masks").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        image, gt = synthetic_pair(h, w, seed=i)
        Image.fromarray(image).save(folder / "images" / f"img{i}.png")
        Image.fromarray((gt * 255).astype(np.uint8)).save(folder / "masks" / f"img{i}.png")
    return folder


@pytest.fixture
def tiny_dataset(tmp_path: Path):
    from iislib.experiment.data import load_dataset

    return load_dataset(write_folder_dataset(tmp_path / "tiny"))


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The benchmark data (``$IISLIB_DATA``). Missing data skips locally and fails under CI."""
    root = os.environ.get("IISLIB_DATA")
    if root and (Path(root) / "berkeley").is_dir():
        return Path(root)
    msg = f"benchmark data not found (IISLIB_DATA={root!r})"
    if os.environ.get("CI"):
        pytest.fail(msg + ": CI must provide it")
    pytest.skip(msg)


@pytest.fixture(scope="session")
def official_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A weights folder with the paper's pair and RITM's COCO+LVIS h18s under their official
    names, random weights in the official layouts (``tests.test_official``). Built once per
    session for every test module (the full networks are 10-38 M parameters)."""
    from tests.test_official import write_gto99, write_ritm

    folder = tmp_path_factory.mktemp("weights")
    write_ritm(folder / "sbd_h18_itermask.pth", "h18")
    write_ritm(folder / "coco_lvis_h18s_itermask.pth", "h18s")
    write_gto99(folder / "InterSegSynthFT.pth")
    return folder
