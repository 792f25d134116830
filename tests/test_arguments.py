"""Issue 26, section 3: evaluate's arguments are checked before any work, with a message saying
what was expected (never an AttributeError from deep inside), and a cache path never leaves
cache_dir."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import iislib.experiment.sweep as ex
from iislib.core.clicks import Click
from iislib.core.human import ReplayRobot
from iislib.experiment.sweep import ModelSpec, cache_entry, evaluate
from iislib.models.settings import get_settings


@pytest.fixture
def no_work(monkeypatch):
    """Fails the test if a job starts."""

    def job(*a):
        raise AssertionError("a job ran before the arguments were checked")

    monkeypatch.setattr(ex, "run_job", job)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"dataset": "LIST"}, r"dataset must be a Dataset \(load_dataset\(name or folder\).*a "
                              "list of samples cannot be evaluated"),
        ({"dataset": 3}, r"dataset must be a Dataset \(load_dataset"),
        ({"robots": [3]}, r"a robot is a registered name \(e.g. 'rritm'\) or a Robot .*got 3"),
        ({"robots": ["r01", None]}, r"a robot is a registered name .*got None"),
        ({"seeds": "0"}, r"seeds must be integers, e.g. \(0,\) or \[0, 1\]"),
        ({"seeds": [True]}, r"seeds must be integers"),
        ({"models": {"rw": 3}}, r"models must be a registry name, a list of names, or \{label: "),
        ({"models": [None]}, r"models must be a registry name"),
        ({"models": ["random_walkr"]}, r"unknown model\(s\) 'random_walkr'; registered: "),
        ({"models": {"rw": {"name": "nope"}}}, r"unknown model\(s\) 'nope'"),
    ],
)  # fmt: skip
def test_api_misuse_says_what_was_expected(tiny_dataset, tmp_path, no_work, kwargs, message):
    args = {"models": ["random_walker"], "robots": ["r01"], "dataset": tiny_dataset, **kwargs}
    if args["dataset"] == "LIST":
        args["dataset"] = list(tiny_dataset)
    with pytest.raises(ValueError, match=message):
        evaluate(args.pop("models"), args.pop("robots"), args.pop("dataset"), progress=False,
                 cache_dir=tmp_path / "c", **args)  # fmt: skip
    assert not (tmp_path / "c").exists()


def test_a_name_a_folder_one_seed_and_a_label_mapping_are_accepted(tiny_dataset, tmp_path):
    kw = dict(max_clicks=2, settings="direct", progress=False)
    a = evaluate({"rw": "random_walker"}, "r01", str(tiny_dataset.folder), seeds=0, **kw)
    b = evaluate({"rw": {"name": "random_walker"}}, ["r01"], tiny_dataset, seeds=[0], **kw)
    cols = [c for c in ex.COLUMNS if not c.endswith("seconds")]
    assert a[cols].equals(b[cols]) and set(a["model"]) == {"rw"} and set(a["seed"]) == {0}


def test_a_cache_dir_that_is_a_file_is_refused_before_any_work(tiny_dataset, tmp_path, no_work):
    f = tmp_path / "results.csv"
    f.write_text("not a folder\n")
    for cache in (f, f / "sub"):
        with pytest.raises(ValueError, match=rf"cache_dir {cache} is not a folder"):
            evaluate(["random_walker"], ["r01"], tiny_dataset, cache_dir=cache, progress=False)
    assert f.read_text() == "not a folder\n"


HOSTILE = ["../../evil", "..", ".", "/etc/passwd", "a/../../b", "\0", ".hidden", "x" * 300]


@settings(max_examples=40, deadline=None)
@given(name=st.one_of(st.sampled_from(HOSTILE), st.text(min_size=1, max_size=30),
                      st.lists(st.sampled_from(["..", "/", "a", "."]), min_size=1).map("".join)))  # fmt: skip
def test_a_robot_name_never_leaves_the_cache(name):
    """A replay robot's name (any text: '../../evil', '/etc', 'a/../../b', NUL, ...) and a model
    label are path components under cache_dir, never a way out of it."""
    cache = Path("/tmp/iislib-cache-root")
    robot = ReplayRobot([Click(1, 1, True)], name=name)
    spec = ModelSpec(name, "random_walker")
    ds = type("D", (), {"folder": Path("/data/x"), "name": name,
                        "content_key": lambda self, image: "same content"})()  # fmt: skip
    path = cache_entry(cache, spec, get_settings("direct"), ds, name, robot, 0, 3).path
    assert path.parent.parent.parent == cache
    assert all(part not in ("", ".", "..") and "/" not in part and "\0" not in part
               for part in path.relative_to(cache).parts)  # fmt: skip
    assert len(path.relative_to(cache).parts) == 3


def test_a_hostile_replay_name_writes_inside_the_cache(tiny_dataset, tmp_path):
    cache = tmp_path / "deep" / "cache"
    robot = ReplayRobot([Click(20, 20, True)], name="../../evil")
    before = set(tmp_path.rglob("*"))
    t = evaluate(["random_walker"], [robot], tiny_dataset.subset(1), max_clicks=1,
                 settings="direct", cache_dir=cache, progress=False)  # fmt: skip
    assert set(t["robot"]) == {"../../evil"}  # the rows keep the name
    written = [p for p in set(tmp_path.rglob("*")) - before if p.is_file()]
    assert written and all(p.is_relative_to(cache) for p in written)
    again = evaluate(["random_walker"], [robot], tiny_dataset.subset(1), max_clicks=1,
                     settings="direct", cache_dir=cache, progress=False)  # fmt: skip
    assert t.drop(columns=["model_seconds", "robot_seconds"]).equals(
        again.drop(columns=["model_seconds", "robot_seconds"])
    )
