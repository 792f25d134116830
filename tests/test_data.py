"""Dataset loaders against the shared benchmark data, bad inputs, and the download path."""

from __future__ import annotations

import hashlib
import http.server
import threading
import zipfile
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

from iislib.experiment.data import (
    DataError,
    download,
    load_dataset,
    load_pair,
    read_image,
    read_manifest,
)
from tests.conftest import synthetic_pair, write_folder_dataset

# ---------------------------------------------------------------------------------------------
# the real benchmarks


def test_berkeley(data_root):
    ds = load_dataset("berkeley", root=data_root)
    assert len(ds) == 100
    assert {"189011a", "189011b", "8023"} <= set(ds.names)
    s = ds["8023"]
    assert s.image.dtype == np.uint8 and s.image.shape[2] == 3
    assert s.gt.dtype == np.bool_ and s.gt.shape == s.image.shape[:2]
    assert s.ignore is None
    assert 0 < s.gt.mean() < 1


def test_grabcut_has_an_ignore_band(data_root):
    ds = load_dataset("grabcut", root=data_root)
    assert len(ds) == 50
    with_band = [s.name for s in ds if s.ignore is not None]
    assert len(with_band) == 42  # the README: 42 masks have the 128 band
    s = ds[with_band[0]]
    assert not (s.gt & s.ignore).any()


def test_environment_variable_is_the_default_root(data_root, monkeypatch):
    monkeypatch.setenv("IISLIB_DATA", str(data_root))
    assert len(load_dataset("berkeley").subset(5)) == 5


def test_shipped_manifest_matches_the_local_copy(data_root):
    from iislib.experiment.data import MANIFESTS, verify_folder

    manifest = read_manifest(MANIFESTS / "berkeley.txt")
    assert len(manifest) == 200
    subset = dict(list(manifest.items())[:6])
    verify_folder(data_root / "berkeley", subset)


def test_davis_reads_every_nonzero_label_as_foreground(data_root):
    import cv2

    ds = load_dataset("davis", root=data_root)
    assert len(ds) == 345 and ds.names[0] == "000" and ds.names[-1] == "344"
    # RITM's DavisDataset: cv2.imread (the palette's colours), max over channels, > 0. 195 holds
    # labels 1, 2 and 160 pixels of DAVIS's void label 255 (colour 224, 224, 192).
    for name in ("000", "010", "195", "344"):
        s = ds[name]
        colours = cv2.imread(str(ds.folder / "masks" / f"{name}.png")).astype(np.int32)
        np.testing.assert_array_equal(s.gt, colours.max(axis=2) > 0)
        assert s.ignore is None
    labels = np.asarray(Image.open(ds.folder / "masks" / "195.png"))
    assert set(np.unique(labels).tolist()) == {0, 1, 2, 255}
    assert ds["195"].gt.sum() == np.count_nonzero(labels) and (labels == 255).sum() == 160


def test_every_dataset_ships_a_manifest_that_matches_the_shared_checksums(data_root):
    from iislib.experiment.data import DATASET_NAMES, MANIFESTS, verify_folder

    sums = data_root / "SHA256SUMS"
    for name in DATASET_NAMES:
        manifest = read_manifest(MANIFESTS / f"{name}.txt")
        assert manifest and all(rel.split("/")[0] in ("images", "masks") for rel in manifest)
        if sums.is_file():  # the data's own list, ./<name>/<path>, agrees file for file
            prefix = f"./{name}/"
            theirs = {rel.removeprefix(prefix): digest for rel, digest in
                      ((line.split()[1], line.split()[0]) for line in sums.read_text().splitlines()
                       if line.split()[1:] and line.split()[1].startswith(prefix))}  # fmt: skip
            assert manifest == theirs, name
    davis = read_manifest(MANIFESTS / "davis.txt")
    assert len(davis) == 690
    verify_folder(data_root / "davis", davis)  # every file, 45 MB


# ---------------------------------------------------------------------------------------------
# bad input


def test_folder_dataset_and_its_errors(tmp_path):
    folder = write_folder_dataset(tmp_path / "mine", n=2)
    ds = load_dataset(folder)
    assert len(ds) == 2 and ds[0].gt.any()
    with pytest.raises(DataError, match="unknown dataset 'nowhere'"):
        load_dataset("nowhere")
    with pytest.raises(DataError, match="does not exist"):
        load_dataset("berkeley", root=tmp_path / "missing")
    with pytest.raises(DataError, match="no berkeley/ folder"):
        load_dataset("berkeley", root=tmp_path)
    (folder / "masks" / "img1.png").unlink()
    with pytest.raises(DataError, match="without a partner.*img1"):
        load_dataset(folder)


def _save(path: Path, a: np.ndarray) -> Path:
    Image.fromarray(a).save(path)
    return path


def test_load_pair_rule_and_errors(tmp_path):
    image, gt = synthetic_pair()
    img = _save(tmp_path / "i.png", image)
    # The binary rule of a pair: channel mean < 128 is background.
    rgb = np.zeros((*gt.shape, 3), np.uint8)
    rgb[gt] = (255, 200, 0)  # mean 151.7: foreground
    np.testing.assert_array_equal(load_pair(img, _save(tmp_path / "m.png", rgb)).gt, gt)
    rgb[gt] = (255, 60, 0)  # mean 105: background
    with pytest.raises(DataError, match="m2.png: the mask is empty"):
        load_pair(img, _save(tmp_path / "m2.png", rgb))
    rgb[0, 0] = (255, 200, 0)  # a third colour: no rule says which colours are the object
    with pytest.raises(DataError, match=r"m3.png: the mask has 3 distinct values: \(0, 0, 0\), "
                       r"\(255, 60, 0\), \(255, 200, 0\), not the two"):  # fmt: skip
        load_pair(img, _save(tmp_path / "m3.png", rgb))

    with pytest.raises(DataError, match="image is 50x40.*mask is 49x40"):
        load_pair(img, _save(tmp_path / "small.png", (gt[:, :-1] * 255).astype(np.uint8)))
    with pytest.raises(DataError, match="empty"):
        load_pair(img, _save(tmp_path / "empty.png", np.zeros(gt.shape, np.uint8)))
    with pytest.raises(DataError, match="all foreground"):
        load_pair(img, _save(tmp_path / "full.png", np.full(gt.shape, 255, np.uint8)))
    bad = tmp_path / "corrupt.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(DataError, match="corrupt.png: not a readable"):
        load_pair(bad, img)
    with pytest.raises(DataError, match="no such file"):
        load_pair(tmp_path / "nope.png", img)


def test_dataset_sample_with_empty_mask_names_the_file(tmp_path):
    folder = write_folder_dataset(tmp_path / "d", n=1)
    Image.fromarray(np.zeros((40, 50), np.uint8)).save(folder / "masks" / "img0.png")
    with pytest.raises(DataError, match="img0.png: the mask is empty"):
        load_dataset(folder)[0]


# ---------------------------------------------------------------------------------------------
# download through pooch, against a local stand-in for the release server


@pytest.fixture
def served_zip(tmp_path):
    src = write_folder_dataset(tmp_path / "src" / "Berkeley", n=2)
    archive = tmp_path / "www" / "Berkeley.zip"
    archive.parent.mkdir()
    manifest = {}
    with zipfile.ZipFile(archive, "w") as z:
        for f in sorted(src.rglob("*.png")):
            rel = f.relative_to(src).as_posix()
            z.write(f, f"Berkeley/{rel}")
            manifest[rel] = hashlib.sha256(f.read_bytes()).hexdigest()
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(archive.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/Berkeley.zip", manifest
    finally:
        server.shutdown()
        server.server_close()


def test_download_unzips_and_verifies(served_zip, tmp_path):
    url, manifest = served_zip
    folder = download("berkeley", url=url, manifest=manifest, cache=tmp_path / "cache")
    assert sorted(p.name for p in (folder / "images").iterdir()) == ["img0.png", "img1.png"]
    assert len(load_dataset(folder)) == 2
    # A second call uses the cache (the server could be gone).
    assert download("berkeley", url=url, manifest=manifest, cache=tmp_path / "cache") == folder


def test_download_rejects_files_with_another_checksum(served_zip, tmp_path):
    url, manifest = served_zip
    manifest = dict(manifest)
    manifest["images/img0.png"] = "0" * 64
    with pytest.raises(DataError, match="images/img0.png \\(checksum differs\\)"):
        download("berkeley", url=url, manifest=manifest, cache=tmp_path / "cache2")


def test_fetch_downloads_into_data_and_verifies(served_zip, tmp_path, monkeypatch):
    from iislib import paths
    from iislib.experiment import data

    url, manifest = served_zip
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    (manifests / "berkeley.txt").write_text(
        "".join(f"{digest}  {rel}\n" for rel, digest in manifest.items())
    )
    monkeypatch.delenv("IISLIB_DATA", raising=False)
    monkeypatch.setitem(data.URLS, "berkeley", url)
    monkeypatch.setattr(data, "MANIFESTS", manifests)
    monkeypatch.setattr(paths, "DATA", tmp_path / "data")  # the checkout's data/ by default
    (got,) = data.fetch(("berkeley",))
    assert got.folder == tmp_path / "data" / "berkeley" / "Berkeley"
    assert got.images == 2 and got.verified
    # a damaged file is found on the next fetch, named with its reason
    (got.folder / "images" / "img1.png").write_bytes(b"changed")
    with pytest.raises(DataError, match=r"images/img1.png \(checksum differs\)"):
        data.fetch(("berkeley",))


def test_fetch_verifies_a_local_root_and_names_unknown_datasets(tmp_path):
    from iislib.experiment.data import fetch

    with pytest.raises(DataError, match="unknown dataset 'berkly'"):
        fetch(("berkly",), root=tmp_path)
    with pytest.raises(DataError, match="no berkeley/ folder"):
        fetch(("berkeley",), root=tmp_path)
    # a local copy whose files differ from the official manifest is refused
    write_folder_dataset(tmp_path / "berkeley", n=2)
    with pytest.raises(DataError, match="fail verification"):
        fetch(("berkeley",), root=tmp_path)


def test_cli_data_prints_where_the_verified_datasets_are(data_root, capsys):
    from iislib.apps.cli import main

    assert main(["data", "--data", str(data_root)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("berkeley: 100 images in ") and "verified" in out[0]
    assert out[1].startswith("grabcut: 50 images in ")
    assert out[2].startswith("davis: 345 images in ") and "every file verified" in out[2]
    assert main(["data", "--data", str(data_root), "--names", "nope"]) == 2


# ---------------------------------------------------------------------------------------------
# image modes, 0/1 masks, decompression bombs, size limits


def _save_as(path: Path, a: np.ndarray, **kw) -> Path:
    Image.fromarray(a, **kw).save(path)
    return path


@settings(max_examples=15, deadline=None)
@given(values=arrays(np.uint16, (5, 7), elements=st.integers(0, 65535)))
def test_16bit_grey_is_scaled_to_8_bits(tmp_path_factory, values):
    folder = tmp_path_factory.mktemp("deep")
    want = np.rint(values / 257.0).astype(np.uint8)  # 65535 -> 255, 32896 -> 128
    for suffix in (".png", ".tif"):
        path = _save_as(folder / f"grey16{suffix}", values)
        with Image.open(path) as im:
            assert im.mode.startswith("I;16")
        got = read_image(path)
        assert got.dtype == np.uint8 and got.shape == (5, 7, 3)
        np.testing.assert_array_equal(got, np.repeat(want[..., None], 3, axis=-1))


def test_16bit_grey_by_hand_and_through_load_pair(tmp_path):
    # The reported case: a 16-bit photo loaded as all 255.
    values = np.array([[0, 257, 1000, 32896], [40000, 65280, 65534, 65535]], np.uint16)
    img = _save_as(tmp_path / "g16.png", values)
    np.testing.assert_array_equal(read_image(img)[..., 0], [[0, 1, 4, 128], [156, 254, 255, 255]])
    mask = _save_as(tmp_path / "m16.png", np.array([[0, 0, 65535, 65535]] * 2, np.uint16))
    s = load_pair(img, mask)
    np.testing.assert_array_equal(s.image[..., 0], read_image(img)[..., 0])
    np.testing.assert_array_equal(s.gt, [[False, False, True, True]] * 2)


def test_float_and_32bit_images(tmp_path):
    f = np.array([[0.0, 0.5, 1.0], [0.25, 0.75, 0.1]], np.float32)
    np.testing.assert_array_equal(
        read_image(_save_as(tmp_path / "f.tif", f))[..., 0], [[0, 128, 255], [64, 191, 26]]
    )
    with pytest.raises(DataError, match=r"mode F\) must be finite and in \[0, 1\]; found 0 to 2"):
        read_image(_save_as(tmp_path / "f2.tif", f * 2))
    with pytest.raises(DataError, match="finite"):
        read_image(_save_as(tmp_path / "fnan.tif", np.where(f > 0.6, np.nan, f)))
    with pytest.raises(DataError, match=r"i32.tif: 32-bit integer pixels \(PIL mode I\)"):
        read_image(_save_as(tmp_path / "i32.tif", (f * 1e6).astype(np.int32)))


def test_01_label_masks_are_binary_and_all_zero_masks_stay_empty(tmp_path):
    image, gt = synthetic_pair()
    img = _save(tmp_path / "i.png", image)
    for name, labels in [("l8.png", gt.astype(np.uint8)), ("l16.png", gt.astype(np.uint16))]:
        s = load_pair(img, _save(tmp_path / name, labels))
        np.testing.assert_array_equal(s.gt, gt)
    rgb = np.repeat(gt.astype(np.uint8)[..., None], 3, axis=-1)  # 0/1 in every channel
    np.testing.assert_array_equal(load_pair(img, _save(tmp_path / "rgb.png", rgb)).gt, gt)
    with pytest.raises(DataError, match="the mask is empty"):
        load_pair(img, _save(tmp_path / "zero.png", np.zeros(gt.shape, np.uint8)))
    with pytest.raises(DataError, match="all foreground"):
        load_pair(img, _save(tmp_path / "one.png", np.ones(gt.shape, np.uint8)))
    # a 0/2 mask is no label mask: grey levels 0 and 2 are both background, as before
    with pytest.raises(DataError, match="the mask is empty"):
        load_pair(img, _save(tmp_path / "two.png", gt.astype(np.uint8) * 2))
    # the dataset rules read 0/1 labels the same way
    folder = write_folder_dataset(tmp_path / "d", n=1)
    _save(folder / "masks" / "img0.png", gt.astype(np.uint8))
    _save(folder / "images" / "img0.png", image)
    np.testing.assert_array_equal(load_dataset(folder)[0].gt, gt)


def test_decompression_bombs_are_refused(tmp_path, monkeypatch):
    image, gt = synthetic_pair()  # 50 x 40 = 2000 pixels
    img = _save(tmp_path / "i.png", image)
    msk = _save(tmp_path / "m.png", (gt * 255).astype(np.uint8))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1500)  # 2000 > 1500: PIL only warns
    with pytest.raises(DataError, match="i.png: refused as a decompression bomb"):
        load_pair(img, msk)
    with pytest.raises(DataError, match="decompression bomb"):
        read_image(img)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 900)  # 2000 > 2 x 900: PIL raises
    with pytest.raises(DataError, match="i.png: refused as a decompression bomb"):
        load_pair(img, msk)


def test_pixel_limit_and_downscaling(tmp_path):
    image, gt = synthetic_pair(h=40, w=50)
    img = _save(tmp_path / "i.png", image)
    msk = _save(tmp_path / "m.png", (gt * 255).astype(np.uint8))
    # longer side 43 -> 43x34 = 1462 pixels fits; 44 -> 44x35 = 1540 does not
    with pytest.raises(
        DataError, match=r"50x40 is 0.002 megapixels, over the limit.*--max-side 43"
    ):
        load_pair(img, msk, max_pixels=1500)
    s = load_pair(img, msk, max_side=25, max_pixels=1500)
    assert s.image.shape == (20, 25, 3) and s.gt.shape == (20, 25)
    want = np.asarray(Image.fromarray((gt * 255).astype(np.uint8)).resize((25, 20), 0)) >= 128
    np.testing.assert_array_equal(s.gt, want)  # nearest neighbour: a subset of the mask's pixels
    assert load_pair(img, msk, max_side=60).image.shape == (40, 50, 3)  # never upscaled
    with pytest.raises(DataError, match="over the limit"):
        load_pair(img, msk, max_side=50, max_pixels=1500)


@settings(max_examples=200, deadline=None)
@given(w=st.integers(1, 5000), h=st.integers(1, 5000), limit=st.integers(1, 4_000_000))
def test_suggested_side_is_the_largest_that_fits(w, h, limit):
    from iislib.experiment.data import fit_side, largest_side_within

    side = largest_side_within(w, h, limit)
    fw, fh = fit_side(w, h, side)
    assert fw * fh <= limit or side == 1
    if side < max(w, h):
        gw, gh = fit_side(w, h, side + 1)
        assert gw * gh > limit
