"""No silent wrong numbers from the data (issue 26, section 1): results cached for a file that has
since changed, two images for one mask, EXIF orientation, label masks read by a threshold.

The folder rules are property tests: hypothesis generates folders with duplicate stems, photos
with every EXIF orientation and label masks of any set of labels.
"""

from __future__ import annotations

import datetime
import io
import os
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageFile

from iislib.experiment import sweep as ex
from iislib.experiment.data import (
    DataError,
    MaskRule,
    Sample,
    file_digest,
    load_dataset,
    load_pair,
    read_image,
)
from iislib.experiment.sweep import evaluate
from tests.conftest import synthetic_pair, write_folder_dataset

FAST = dict(max_clicks=3, settings="direct", progress=False)
ORIENTATION = 0x0112

# What a viewer shows for the stored pixels ``a`` of a file tagged with EXIF Orientation o (the
# EXIF 2.3 table, written here with NumPy, independently of PIL's ImageOps).
SHOWN = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.swapaxes(0, 1),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: a[::-1, ::-1].swapaxes(0, 1),
    8: lambda a: np.rot90(a, 1),
}


def _save(path: Path, a: np.ndarray, orientation: int | None = None, **kw) -> Path:
    exif = Image.Exif()
    if orientation is not None:
        exif[ORIENTATION] = orientation
    Image.fromarray(a).save(path, exif=exif, **kw)
    return path


def _palette_png(path: Path, labels: np.ndarray) -> Path:
    """A PASCAL-VOC-style palette mask: index 0 black, 1 dark red, 2 dark green, 255 cream."""
    im = Image.fromarray(labels.astype(np.uint8), mode="P")
    palette = [0, 0, 0] * 256
    palette[3:9] = [128, 0, 0, 0, 128, 0]
    palette[3 * 255 : 3 * 256] = [224, 224, 192]
    im.putpalette(palette)
    im.save(path)
    return path


# ---------------------------------------------------------------------------------------------
# 1. a result cached for a file that has since changed


def _another_mask(folder: Path, stem: str) -> np.ndarray:
    """A mask of the same size, shifted: same name and size, other content."""
    with Image.open(folder / "masks" / f"{stem}.png") as im:
        old = np.asarray(im)
    new = np.roll(old, 9, axis=1)
    assert (new != old).any()
    return new


def test_a_mask_replaced_in_place_is_recomputed_not_read_from_the_cache(tmp_path, monkeypatch):
    # The reported case: overwrite masks/X.png with another mask of the same size and rerun on
    # the same cache. The old numbers came back.
    folder = write_folder_dataset(tmp_path / "mine", n=2)
    cache = tmp_path / "cache"
    evaluate(["random_walker"], ["rritm"], load_dataset(folder), cache_dir=cache, **FAST)
    _save(folder / "masks" / "img1.png", _another_mask(folder, "img1"))

    calls = []
    real_job = ex.run_job
    monkeypatch.setattr(ex, "run_job", lambda *a: calls.append(a) or real_job(*a))
    again = evaluate(["random_walker"], ["rritm"], load_dataset(folder), cache_dir=cache, **FAST)
    assert [a[2].names[a[3]] for a in calls] == ["img1"]  # img0 is still read from the cache
    fresh = evaluate(["random_walker"], ["rritm"], load_dataset(folder), **FAST)
    cols = [c for c in again.columns if not c.endswith("_seconds")]
    assert again[cols].equals(fresh[cols])


def test_the_key_follows_the_content_not_the_mtime(tmp_path):
    folder = write_folder_dataset(tmp_path / "mine", n=2)
    ds = load_dataset(folder)
    key = ds.content_key("img0")
    mask = folder / "masks" / "img0.png"
    # the same bytes with another mtime (a copy, a checkout, touch): the same key
    os.utime(mask, ns=(1_000_000_000, 1_000_000_000))
    assert load_dataset(folder).content_key("img0") == key
    # another content under the same name: another key
    data = (folder / "images" / "img0.png").read_bytes()
    _save(folder / "images" / "img0.png", np.roll(read_image(folder / "images" / "img0.png"), 1))
    assert load_dataset(folder).content_key("img0") != key
    # the same content again: the first key again
    (folder / "images" / "img0.png").write_bytes(data)
    assert load_dataset(folder).content_key("img0") == key
    # the mask rule is part of it (a folder read with nonzero gives other ground truths)
    assert load_dataset(folder, mask_rule="nonzero").content_key("img0") != key
    assert load_dataset(folder, object=255).content_key("img0") != key


def test_the_cache_entry_holds_the_content(tmp_path):
    a = write_folder_dataset(tmp_path / "a", n=1)
    spec = ex.ModelSpec("random_walker", "random_walker")
    settings_ = ex.get_settings("direct")

    def entry():
        return ex.cache_entry(
            tmp_path / "c", spec, settings_, load_dataset(a), "img0", "rritm", 0, 3
        )

    before = entry()
    os.utime(a / "images" / "img0.png", ns=(5, 5))
    assert entry() == before
    _save(a / "masks" / "img0.png", _another_mask(a, "img0"))
    assert entry().key != before.key and entry().path != before.path


def test_file_digest_is_paid_once_per_file_version(tmp_path, monkeypatch):
    from iislib.experiment import data

    f = tmp_path / "f.bin"
    f.write_bytes(b"abc")
    data._file_digest.cache_clear()
    d = file_digest(f)
    assert d == __import__("hashlib").sha256(b"abc").hexdigest()[:32]
    for _ in range(5):
        assert file_digest(f) == d
    assert data._file_digest.cache_info().misses == 1


def test_in_memory_samples_have_a_content_digest():
    image, gt = synthetic_pair()
    s = Sample("a", image, gt)
    assert s.digest() == Sample("b", image.copy(), gt.copy()).digest()  # the name is not content
    other = gt.copy()
    other[0, 0] = ~other[0, 0]
    assert Sample("a", image, other).digest() != s.digest()
    assert Sample("a", image, gt, np.zeros_like(gt)).digest() != s.digest()
    assert Sample("a", image, gt.astype(np.uint8)).digest() != s.digest()  # dtype counts


# ---------------------------------------------------------------------------------------------
# 2. two images for one mask

SUFFIXES = [".png", ".jpg", ".jpeg", ".bmp", ".tif", ".PNG"]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    layout=st.dictionaries(
        st.sampled_from(["x", "y", "12003", "a.b", "X"]),
        st.tuples(
            st.lists(st.sampled_from(SUFFIXES), min_size=1, max_size=3, unique=True),
            st.lists(st.sampled_from(SUFFIXES), min_size=1, max_size=2, unique=True),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_a_stem_with_two_files_is_refused_naming_them(tmp_path_factory, layout):
    folder = tmp_path_factory.mktemp("stems")
    for sub, i in (("images", 0), ("masks", 1)):
        (folder / sub).mkdir()
        for stem, files in layout.items():
            for suffix in files[i]:
                (folder / sub / f"{stem}{suffix}").write_bytes(b"not read when listing")
    twice = {
        (sub, stem): files[i]
        for stem, files in layout.items()
        for sub, i in (("images", 0), ("masks", 1))
        if len(files[i]) > 1
    }
    if not twice:
        assert load_dataset(folder).names == sorted(layout)
        return
    with pytest.raises(DataError, match="ambiguous") as err:
        load_dataset(folder)
    message = str(err.value)
    first = next(iter(sorted({sub for sub, _ in twice}, key=["images", "masks"].index)))
    for (sub, stem), suffixes in twice.items():
        if sub == first:  # images/ is checked first; its message names all its files
            for suffix in suffixes:
                assert f"{sub}/{stem}{suffix}" in message, message


def test_the_reported_case_two_images_for_one_mask(tmp_path):
    folder = write_folder_dataset(tmp_path / "d", n=1)
    image, gt = synthetic_pair()
    _save(folder / "images" / "img0.jpg", image)  # img0.png is there too
    with pytest.raises(DataError, match=r"images/img0.jpg, images/img0.png; keep one"):
        load_dataset(folder)


# ---------------------------------------------------------------------------------------------
# 3. EXIF orientation


@settings(max_examples=40, deadline=None)
@given(
    o=st.integers(1, 8),
    h=st.integers(3, 12),
    w=st.integers(3, 12),
    tag_mask=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_files_are_read_as_viewers_show_them(tmp_path_factory, o, h, w, tag_mask, seed):
    """A photo stored turned with an Orientation tag, its mask drawn on the upright view (or
    stored turned and tagged as well): image and mask line up in every reading path."""
    folder = tmp_path_factory.mktemp("exif")
    rng = np.random.default_rng(seed)
    stored = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    mask_stored = np.zeros((h, w), np.uint8)
    mask_stored[rng.integers(0, h), :] = 255  # one full row: neither empty nor full
    upright_image, upright_mask = SHOWN[o](stored), SHOWN[o](mask_stored)

    (folder / "images").mkdir()
    (folder / "masks").mkdir()
    img = _save(folder / "images" / "p.png", stored, o)
    if tag_mask:
        msk = _save(folder / "masks" / "p.png", mask_stored, o)
    else:
        msk = _save(folder / "masks" / "p.png", np.ascontiguousarray(upright_mask))

    for s in (load_pair(img, msk), load_dataset(folder)[0]):
        np.testing.assert_array_equal(s.image, upright_image)
        np.testing.assert_array_equal(s.gt, upright_mask > 0)
    np.testing.assert_array_equal(read_image(img), upright_image)

    # the demo's upload reads the bytes through the same reader
    from iislib.experiment.demo import decode_image_bytes, decode_mask_bytes

    np.testing.assert_array_equal(decode_image_bytes(img.read_bytes()), upright_image)
    np.testing.assert_array_equal(decode_mask_bytes(msk.read_bytes()) > 0, upright_mask > 0)


def test_a_phone_photo_in_the_cli_demo(tmp_path):
    # Orientation 6 on a non-square photo: today a size error that does not mention EXIF.
    from iislib.apps.cli import main

    image, gt = synthetic_pair(h=40, w=50)
    stored = np.ascontiguousarray(np.rot90(image, 1))  # what the camera wrote: turned back
    img = _save(tmp_path / "phone.jpg", stored, 6, quality=95)
    msk = _save(tmp_path / "mask.png", (gt * 255).astype(np.uint8))
    out = tmp_path / "out"
    assert main(["demo", str(img), str(msk), "--clicks", "2", "--out", str(out)]) == 0
    # a mask of the stored (turned) size no longer fits, and the error says why
    wrong = _save(tmp_path / "wrong.png", (np.rot90(gt, 1) * 255).astype(np.uint8))
    with pytest.raises(DataError, match=r"image is 50x40 .* mask is 40x50 \(EXIF orientation "
                       "applied: image 6\\)"):  # fmt: skip
        load_pair(img, wrong)


# ---------------------------------------------------------------------------------------------
# 4. label masks: a stated rule, or a refusal naming the values


def _labels(rng: np.random.Generator, h: int, w: int, values: list[int]) -> np.ndarray:
    """A label map in which every one of ``values`` appears."""
    a = rng.choice(values, size=(h, w)).astype(np.uint8)
    a.flat[: len(values)] = values
    return a


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(
        st.sampled_from([0, 1, 2, 3, 7, 128, 200, 255]), min_size=2, max_size=5, unique=True
    ),  # fmt: skip
    kind=st.sampled_from(["palette", "grey"]),
    seed=st.integers(0, 2**16),
)
def test_label_masks_need_a_stated_rule(tmp_path_factory, values, kind, seed):
    folder = write_folder_dataset(tmp_path_factory.mktemp("labels"), n=1, h=12, w=10)
    rng = np.random.default_rng(seed)
    labels = _labels(rng, 12, 10, values)
    msk = folder / "masks" / "img0.png"
    if kind == "palette":
        _palette_png(msk, labels)
    else:
        _save(msk, labels)
    img = folder / "images" / "img0.png"

    def read(**rule):
        out = []
        for reader in (
            lambda: load_pair(img, msk, **rule),
            lambda: load_dataset(folder, **rule)[0],
        ):
            try:
                out.append(reader())
            except DataError as e:
                out.append(e)
        return out

    if len(values) > 2:  # no rule stated: refused, naming every value found
        for got in read():
            assert isinstance(got, DataError), got
            text = str(got)
            assert "img0.png" in text and f"has {len(values)} distinct" in text, text
            found = re.search(r"distinct [a-z ]+: ([0-9, ]+), not the two", text)
            assert found and [int(v) for v in found[1].split(", ")] == sorted(values), text
    for got in read(mask_rule="nonzero"):
        want = labels > 0
        if want.all() or not want.any():
            assert isinstance(got, DataError)
        else:
            assert isinstance(got, Sample), got
            np.testing.assert_array_equal(got.gt, want)
    label = values[-1]
    for got in read(object=label):
        want = labels == label
        void = (labels == 255) if label != 255 else np.zeros_like(want)
        valid = ~void
        if not want[valid].any() or want[valid].all():
            assert isinstance(got, DataError)
        else:
            assert isinstance(got, Sample), got
            np.testing.assert_array_equal(got.gt, want)
            np.testing.assert_array_equal(
                got.ignore if got.ignore is not None else np.zeros_like(want), void
            )


def test_the_reported_palette_mask(tmp_path):
    # 0 background, objects 1 and 2, a void border 255: the threshold kept the border alone.
    image, _ = synthetic_pair(h=40, w=50)
    labels = np.zeros((40, 50), np.uint8)
    labels[10:30, 5:20] = 1
    labels[10:30, 28:45] = 2
    labels[9, 5:45] = labels[30, 5:45] = 255
    img = _save(tmp_path / "i.png", image)
    msk = _palette_png(tmp_path / "voc.png", labels)
    with pytest.raises(DataError, match=r"voc.png: the mask has 4 distinct palette indices: "
                       r"0, 1, 2, 255, not the two of a binary mask; say how"):  # fmt: skip
        load_pair(img, msk)
    s = load_pair(img, msk, mask_rule="nonzero")
    np.testing.assert_array_equal(s.gt, labels > 0)
    s = load_pair(img, msk, object=2)
    np.testing.assert_array_equal(s.gt, labels == 2)
    np.testing.assert_array_equal(s.ignore, labels == 255)
    # GrabCut's rule on a pair: 128 ignored
    trimap = np.where(labels == 255, 128, np.where(labels > 0, 255, 0)).astype(np.uint8)
    s = load_pair(img, _save(tmp_path / "tri.png", trimap), mask_rule="grabcut")
    np.testing.assert_array_equal(s.ignore, trimap == 128)
    np.testing.assert_array_equal(s.gt, trimap == 255)
    # the demo's upload refuses it with the same words (its page shows DataError messages)
    from iislib.experiment.demo import decode_mask_bytes

    with pytest.raises(DataError, match="4 distinct palette indices: 0, 1, 2, 255"):
        decode_mask_bytes(msk.read_bytes(), "mask voc.png")


def test_the_demo_page_shows_the_refusal(tmp_path):
    from iislib.apps.demo_app import DemoApp

    image, _ = synthetic_pair(h=40, w=50)
    labels = np.zeros((40, 50), np.uint8)
    labels[10:30, 5:20], labels[10:30, 28:45], labels[9] = 1, 2, 255
    msk = _palette_png(tmp_path / "voc.png", labels)
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    app = DemoApp(clicks=2)
    for widget, name, data in ((app.image_upload, "i.png", buf.getvalue()),
                               (app.mask_upload, "voc.png", msk.read_bytes())):  # fmt: skip
        widget.value = (
            {"name": name, "type": "image/png", "size": len(data), "content": memoryview(data),
             "last_modified": datetime.datetime.now(datetime.timezone.utc)},
        )  # fmt: skip
    assert "4 distinct palette indices: 0, 1, 2, 255" in app.error.value
    assert not app.run() and "4 distinct palette indices" in app.error.value


def test_shipped_rules_and_options(tmp_path):
    assert str(MaskRule("object", 3)) == "object=3"
    with pytest.raises(DataError, match="unknown mask rule 'otsu'; known: binary, threshold"):
        load_pair("a.png", "b.png", mask_rule="otsu")
    with pytest.raises(DataError, match="not both"):
        load_dataset(tmp_path, mask_rule="threshold", object=1)
    with pytest.raises(DataError, match="object must be a label >= 0"):
        load_dataset(tmp_path, object=-1)
    with pytest.raises(DataError, match="needs the object's label"):
        load_dataset(tmp_path, mask_rule="object")


def test_grey_masks_with_more_values_are_refused_unless_thresholded(tmp_path):
    # an antialiased (or JPEG) grey mask: the threshold is a choice the user states
    folder = write_folder_dataset(tmp_path / "d", n=1)
    image, gt = synthetic_pair()
    soft = (gt * 255).astype(np.uint8)
    soft[0, :3] = (100, 130, 200)
    _save(folder / "masks" / "img0.png", soft)
    with pytest.raises(DataError, match=r"5 distinct values: 0, 100, 130, 200, 255"):
        load_dataset(folder)[0]
    np.testing.assert_array_equal(load_dataset(folder, mask_rule="threshold")[0].gt, soft > 128)


def test_cli_options_for_mask_rules(tmp_path, capsys):
    from iislib.apps.cli import main

    image, _ = synthetic_pair(h=40, w=50)
    labels = np.zeros((40, 50), np.uint8)
    labels[10:30, 5:20], labels[10:30, 28:45], labels[9] = 1, 2, 255
    img = _save(tmp_path / "i.png", image)
    msk = _palette_png(tmp_path / "voc.png", labels)
    args = ["demo", str(img), str(msk), "--clicks", "2", "--out", str(tmp_path / "o")]
    assert main(args) == 2
    assert "4 distinct palette indices: 0, 1, 2, 255" in capsys.readouterr().err
    assert main([*args, "--object", "1"]) == 0
    assert main([*args, "--mask-rule", "nonzero"]) == 0
    assert main([*args, "--mask-rule", "nonzero", "--object", "1"]) == 2
    # evaluate reads a folder with the same options
    folder = write_folder_dataset(tmp_path / "d", n=1, h=40, w=50)
    _palette_png(folder / "masks" / "img0.png", labels)
    ev = ["evaluate", "--dataset", str(folder), "--models", "random_walker", "--robots", "rritm",
          "--max-clicks", "2", "--no-cache", "--quiet", "--out", str(tmp_path / "r"),
          "--figures", str(tmp_path / "f")]  # fmt: skip
    assert main(ev) == 2
    assert "4 distinct values: 0, 1, 2, 255" in capsys.readouterr().err
    assert main([*ev, "--object", "2"]) == 0


# ---------------------------------------------------------------------------------------------
# also seen: IISLIB_DATA set to a file


def test_a_data_root_that_is_a_file_is_called_a_file(tmp_path, monkeypatch):
    f = tmp_path / "data.txt"
    f.write_text("")
    monkeypatch.setenv("IISLIB_DATA", str(f))
    with pytest.raises(DataError, match=r"data root .*data.txt is a file, not a folder"):
        load_dataset("berkeley")
    with pytest.raises(DataError, match="does not exist"):
        load_dataset("berkeley", root=tmp_path / "missing")


def test_sizes_come_from_the_headers_orientation_included(tmp_path, monkeypatch):
    # The pixel limit is checked before anything is decoded; reading the orientation must not
    # decode a PNG (PIL does, to look for an eXIf chunk after the pixels).
    from iislib.experiment.data import image_size

    plain = _save(tmp_path / "plain.png", np.zeros((10, 12), np.uint8))
    turned = _save(tmp_path / "turned.png", np.zeros((10, 12), np.uint8), 6)
    photo = _save(tmp_path / "photo.jpg", np.zeros((10, 12, 3), np.uint8), 8)

    def no_decoding(self, *a, **k):
        raise AssertionError("decoded")

    monkeypatch.setattr(Image.Image, "load", no_decoding)
    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    assert image_size(plain) == (12, 10)
    assert image_size(turned) == (10, 12)
    assert image_size(photo) == (10, 12)


def test_a_copy_of_a_benchmark_reads_by_the_benchmark_rule(data_root, tmp_path):
    # A folder holding Berkeley's and GrabCut's own mask files (byte for byte, as the shipped
    # manifests list them) reads them by their benchmark's rule: 8023's two stray grey pixels
    # stay foreground, GrabCut's 128 band stays ignored. An edited copy is refused.
    import shutil

    folder = tmp_path / "mine"
    picks = {"berkeley": ["8023", "101085"], "grabcut": ["106024", "124080"]}
    for sub in ("images", "masks"):
        (folder / sub).mkdir(parents=True)
    for name, stems in picks.items():
        ds = load_dataset(name, root=data_root)
        for stem in stems:
            img, msk = ds._paths(stem)
            shutil.copy(img, folder / "images" / img.name)
            shutil.copy(msk, folder / "masks" / msk.name)
            mine = load_dataset(folder)[stem]
            want = ds[stem]
            np.testing.assert_array_equal(mine.gt, want.gt)
            assert (mine.ignore is None) == (want.ignore is None)
            if want.ignore is not None:
                np.testing.assert_array_equal(mine.ignore, want.ignore)
            pair = load_pair(img, msk)
            np.testing.assert_array_equal(pair.gt, want.gt)
    with Image.open(folder / "masks" / "8023.png") as im:
        edited = np.asarray(im).copy()
    edited[0, 0] = (100, 100, 100)
    _save(folder / "masks" / "8023.png", edited)
    with pytest.raises(DataError, match="8023.png: the mask has 5 distinct values: 0, 100, 197"):
        load_dataset(folder)["8023"]
