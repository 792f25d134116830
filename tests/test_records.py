"""Issue 26: any click record that cannot be used is a RecordError with a message (never a
RecursionError or a bare ValueError), shown on the demo's page; a mask digest in upper case
names the same mask."""

from __future__ import annotations

import json

import numpy as np
import pytest

from iislib.core.clicks import Click
from iislib.core.human import ClickRecord, RecordError, ReplayRobot
from tests.test_demo import _upload, demo_pair, png_bytes


@pytest.fixture(scope="module")
def saved() -> tuple[np.ndarray, np.ndarray, dict]:
    image, gt = demo_pair()
    rec = ClickRecord.new("img", gt, "random_walker")
    rec.add(Click(48, 42, True), "2026-12-01T10:00:00+00:00")
    return image, gt, rec.to_dict()


def _deep(n: int) -> str:
    return "[" * n + "]" * n


def _huge_row(d: dict, digits: int) -> str:
    text = json.dumps({**d, "clicks": [{**d["clicks"][0], "row": 7}]})
    return text.replace('"row": 7', '"row": ' + "9" * digits)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (lambda d: _deep(100_000), "nested too deeply to be a click record"),
        (lambda d: json.dumps({**d, "note": "x"}).replace('"x"', _deep(100_000)),
         "nested too deeply"),
        (lambda d: _huge_row(d, 5000), r"cannot be read: a number in it is too long \(over 4300"),
        (lambda d: _huge_row(d, 400), r"click 1 at \(row 9999.*is outside the"),
        (lambda d: json.dumps({**d, "image": [1]}), "image must be text, got list"),
        (lambda d: json.dumps({**d, "mask_digest": "sha256:" + "g" * 64}), "64 hex digits"),
    ],
)  # fmt: skip
def test_unusable_records_are_record_errors(saved, text, words):
    with pytest.raises(RecordError, match=words) as e:
        ClickRecord.from_json(text(saved[2]), "clicks.json")
    assert str(e.value).startswith("clicks.json") and len(str(e.value)) < 400


def test_an_upper_case_mask_digest_names_the_same_mask(saved):
    _, gt, d = saved
    head, hexdigits = d["mask_digest"].split(":")
    for digest in (f"{head}:{hexdigits.upper()}", f"{head.upper()}:{hexdigits.upper()}"):
        rec = ClickRecord.from_json(json.dumps({**d, "mask_digest": digest}))
        assert rec.mask_digest == d["mask_digest"]
        rec.check_mask(gt)  # not "made on another mask"
        ReplayRobot(rec)(np.zeros_like(gt), gt, [])  # replays on its mask
    rec = ClickRecord("img", gt.shape, d["mask_digest"].upper(), "random_walker")
    rec.check_mask(gt)
    with pytest.raises(RecordError, match="another mask"):
        rec.check_mask(~gt)


def test_the_demo_shows_every_refused_record_on_the_page(saved, monkeypatch):
    from iislib.apps.demo_app import DemoApp

    image, gt, d = saved
    app = DemoApp(mode="human")
    _upload(app.image_upload, "img.png", png_bytes(image))
    _upload(app.mask_upload, "mask.png", png_bytes((gt * 255).astype(np.uint8)))
    assert app.start_clicking(), app.error.value
    _upload(app.record_upload, "deep.json", _deep(100_000).encode())
    assert "deep.json: nested too deeply" in app.error.value
    _upload(app.record_upload, "huge.json", _huge_row(d, 5000).encode())
    assert "huge.json cannot be read: a number in it is too long" in app.error.value
    _upload(app.record_upload, "ok.json", json.dumps(d).encode())
    assert app.error.value == "" and len(app.record) == 1

    def broken(*a, **k):
        raise RuntimeError("something unforeseen")

    monkeypatch.setattr(ClickRecord, "from_json", broken)
    _upload(app.record_upload, "odd.json", b"{}")
    assert "RuntimeError: something unforeseen" in app.error.value and len(app.record) == 1
