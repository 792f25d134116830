"""Training: a smoke run lowers the loss, writes loadable weights, and resumes exactly."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from iislib.core.loop import run
from iislib.core.robots import get_robot
from iislib.training import train as T
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
    state = torch.load(tmp_path / f"{name}.ckpt", weights_only=True)
    assert state["step"] == 4 and len(state["losses"]) == 4
    assert model.config["load_average"] >= 0 and "load average" in model.config["machine_note"]
    T.annotate(path, machine_note="trained alone")
    assert T.load_compact(path).config["machine_note"] == "trained alone"


def test_training_lowers_the_loss(train_root, tmp_path):
    recipe = replace(T.RECIPES["smoke"], steps=30, batch_size=4, crop=64, lr=2e-3,
                     checkpoint_every=30, max_iters=0)  # fmt: skip
    T.train("ritm-compact", train_root, tmp_path, recipe, sets=("horses",), progress=False)
    losses = torch.load(tmp_path / "ritm-compact.ckpt", weights_only=True)["losses"]
    assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:5])


@pytest.mark.parametrize("name", ["ritm-compact", "gto99-compact"])
def test_resume_gives_the_same_weights_as_an_uninterrupted_run(name, train_root, tmp_path):
    # gto99's click maps decide on exact squared distances: before, cv2's float32 transform
    # varied in the last bit between processes and a resumed run drifted (6e-5 in 4 steps).
    kw = dict(sets=("horses",), progress=False)
    a = T.train(name, train_root, tmp_path / "a", SMOKE, **kw)
    partial = T.train(name, train_root, tmp_path / "b", SMOKE, stop_after=2, **kw)
    assert partial.suffix == ".ckpt"
    assert torch.load(partial, weights_only=True)["step"] == 2
    b = T.train(name, train_root, tmp_path / "b", SMOKE, **kw)
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


def test_prefetching_workers_give_the_same_weights(train_root, tmp_path):
    a = T.train("ritm-compact", train_root, tmp_path / "a", SMOKE, sets=("horses",),
                progress=False)  # fmt: skip
    b = T.train("ritm-compact", train_root, tmp_path / "b", SMOKE, sets=("horses",),
                progress=False, prefetch=2)  # fmt: skip
    assert all(d == 0.0 for _, d in T.compare_weights(a, b))


def test_step_inputs_come_in_step_order_and_match_the_serial_ones(train_root):
    from iislib.training.data import load_training_set

    items = load_training_set(train_root, ("horses",))
    serial = list(T.step_inputs(items, SMOKE, "gto99", 0, range(3, 8)))
    ahead = list(T.step_inputs(items, SMOKE, "gto99", 0, range(3, 8), workers=2))
    assert [s.step for s in ahead] == [3, 4, 5, 6, 7]
    for s, w in zip(serial, ahead, strict=True):
        assert s.torch_seed == w.torch_seed and s.clicks == w.clicks
        assert np.array_equal(s.images, w.images) and np.array_equal(s.gts, w.gts)
        assert s.rng.integers(2**31) == w.rng.integers(2**31)  # the rest of the step agrees too
    with pytest.raises(ValueError, match="step input of step 3 given to step 4"):
        T.train_step(None, None, "ritm", "ritm", items, SMOKE, 0, 4, prepared=serial[0])


def test_a_resumed_run_records_where_each_stretch_of_steps_ran(train_root, tmp_path):
    kw = dict(sets=("horses",), progress=False)
    T.train("ritm-compact", train_root, tmp_path, SMOKE, stop_after=2, **kw)
    # as if the first two steps had run on a GPU (their checkpoint moves to this machine)
    ckpt = tmp_path / "ritm-compact.ckpt"
    state = torch.load(ckpt, weights_only=True)
    state["config"]["runs"][0].update(device="cuda (NVIDIA H200)", threads=2)
    torch.save(state, ckpt)
    path = T.train("ritm-compact", train_root, tmp_path, SMOKE, **kw)
    runs = torch.load(path, weights_only=True)["config"]["runs"]
    assert [r["steps"] for r in runs] == [[0, 2], [2, 4]]
    assert [r["device"] for r in runs] == ["cuda (NVIDIA H200)", "cpu"]


def test_a_missing_gpu_is_named(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert T.resolve_device(None).type == "cpu" and T.resolve_device("auto").type == "cpu"
    with pytest.raises(ValueError, match="no CUDA device"):
        T.resolve_device("cuda")


class _Planted:
    """Unpickling this runs ``os.system`` (what a planted checkpoint would do)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def test_a_planted_pickle_in_the_checkpoint_runs_nothing(train_root, tmp_path):
    marker = tmp_path / "ran"
    ckpt = tmp_path / "out" / "ritm-compact.ckpt"
    ckpt.parent.mkdir()
    torch.save({"net": _Planted(marker)}, ckpt)
    with pytest.raises(ValueError, match=r"ritm-compact\.ckpt: not a resumable .* nothing from it"):
        T.train("ritm-compact", train_root, ckpt.parent, SMOKE, sets=("horses",), progress=False)
    assert not marker.exists()
    # the same file through plain pickle would have run the command: the test has teeth
    import pickle

    pickle.loads(pickle.dumps(_Planted(marker)))
    assert marker.exists()


def test_a_checkpoint_loads_without_pickled_code(train_root, tmp_path):
    T.train("gto99-compact", train_root, tmp_path, SMOKE, sets=("horses",), progress=False,
            stop_after=2)  # fmt: skip
    state = T.load_checkpoint(tmp_path / "gto99-compact.ckpt")
    assert state["step"] == 2 and all(isinstance(x, float) for x in state["losses"])
    assert isinstance(state["opt"]["state"][0]["exp_avg"], torch.Tensor)
    (tmp_path / "junk.ckpt").write_bytes(b"\x00" * 10)
    with pytest.raises(ValueError, match="junk.ckpt: not a resumable"):
        T.load_checkpoint(tmp_path / "junk.ckpt")
    torch.save({"net": {}}, tmp_path / "partial.ckpt")
    with pytest.raises(ValueError, match="partial.ckpt: not a resumable .*'opt'"):
        T.load_checkpoint(tmp_path / "partial.ckpt")
