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
from PIL import Image

from iislib.data import (
    DataError,
    download,
    load_dataset,
    load_pair,
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
    from iislib.data import MANIFESTS, verify_folder

    manifest = read_manifest(MANIFESTS / "berkeley.txt")
    assert len(manifest) == 200
    subset = dict(list(manifest.items())[:6])
    verify_folder(data_root / "berkeley", subset)


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
    # The demo's rule: channel mean < 128 is background.
    rgb = np.zeros((*gt.shape, 3), np.uint8)
    rgb[gt] = (255, 200, 0)  # mean 151.7: foreground
    rgb[0, 0] = (255, 60, 0)  # mean 105: background
    s = load_pair(img, _save(tmp_path / "m.png", rgb))
    np.testing.assert_array_equal(s.gt, gt & ~((np.arange(gt.size) == 0).reshape(gt.shape)))

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
