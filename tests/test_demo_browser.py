"""The demo notebook served by Voilà and driven in headless Chromium, as a person would use it.

Starts Voilà on a free loopback port, uploads an image and a mask written here, runs the demo,
waits for the curves, moves the click slider and checks that the panel is redrawn, downloads the
CSV, and checks that a bad mask shows an error and leaves the app usable. A screenshot goes to
``build/demo_browser.png``. Every process started here (Voilà and its kernels) is stopped.

Needs Debian's ``/usr/bin/chromium`` (``apt-get install chromium``; ``playwright install`` cannot
download browsers here). Without it the test skips locally and fails under CI.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from iislib import paths
from tests.test_demo import demo_pair

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
NOTEBOOK = paths.NOTEBOOKS / "05_demo.py"
TIMEOUT_MS = 180_000  # Voilà executes the notebook while it streams the page: slow on 2 cores


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{reason}: CI must provide it (see .ci/run)")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _descendants(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (read from /proc), children first."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM Voilà's process group (it shuts its kernels down), then kill what is left."""
    kernels = _descendants(proc.pid)
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    for pid in kernels:  # kernels live in their own sessions (jupyter_client)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.fixture(scope="module")
def voila_url(tmp_path_factory) -> Iterator[str]:
    if not CHROMIUM.exists():
        _unavailable(f"{CHROMIUM} not found (apt-get install chromium)")
    for module in ("playwright", "voila", "jupytext"):
        try:
            __import__(module)
        except ImportError:
            _unavailable(f"python package {module} is not installed")
    import jupytext

    folder = tmp_path_factory.mktemp("voila")
    notebook = folder / "05_demo.ipynb"
    jupytext.write(jupytext.read(NOTEBOOK), notebook)
    port = _free_port()
    log = (folder / "voila.log").open("w")
    env = dict(os.environ, MPLBACKEND="Agg", OMP_NUM_THREADS="1")
    voila = Path(sys.executable).with_name("voila")
    proc = subprocess.Popen(
        [str(voila), str(notebook), "--no-browser", "--Voila.ip=127.0.0.1", f"--port={port}"],
        cwd=folder, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                pytest.fail(
                    f"voila exited ({proc.returncode}): {(folder / 'voila.log').read_text()}"
                )
            try:  # listening is enough: a GET of the page would start a kernel
                socket.create_connection(("127.0.0.1", port), timeout=2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("voila did not answer within 120 s")
                time.sleep(0.5)
        yield url
    finally:
        _stop(proc)
        log.close()


def _inputs(folder: Path) -> dict[str, Path]:
    image, gt = demo_pair()
    files = {
        "image": folder / "image.png",
        "mask": folder / "mask.png",
        "bad_mask": folder / "bad_mask.png",
    }
    Image.fromarray(image).save(files["image"])
    Image.fromarray((gt * 255).astype(np.uint8)).save(files["mask"])
    Image.fromarray(np.zeros((20, 30), np.uint8)).save(files["bad_mask"])  # wrong size, empty
    return files


def _upload(page, selector: str, path: Path) -> None:
    # ipywidgets 8's FileUpload keeps its <input type=file> out of the DOM: use the chooser.
    with page.expect_file_chooser() as chooser:
        page.click(selector)
    chooser.value.set_files(str(path))


def test_demo_page_runs_redraws_and_reports_errors(voila_url, tmp_path):
    from playwright.sync_api import sync_playwright

    files = _inputs(tmp_path)
    shot = paths.BUILD / "demo_browser.png"
    shot.parent.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                    args=CHROMIUM_ARGS)  # fmt: skip
        try:
            page = browser.new_page(viewport={"width": 1000, "height": 2000})
            page.set_default_timeout(TIMEOUT_MS)
            page.goto(voila_url, wait_until="domcontentloaded", timeout=TIMEOUT_MS)
            page.wait_for_selector(".iis-run")

            # a bad mask: the error appears next to the inputs and nothing runs
            _upload(page, ".iis-image-upload", files["image"])
            _upload(page, ".iis-mask-upload", files["bad_mask"])
            page.wait_for_function(
                "document.querySelector('.iis-error').innerText.includes('30x20')"
            )
            page.click(".iis-run")
            page.wait_for_function(
                "document.querySelector('.iis-error').innerText.includes('image is 128x96')"
            )
            assert not page.is_visible(".iis-results")

            # the right mask: the app is still usable
            _upload(page, ".iis-mask-upload", files["mask"])
            page.wait_for_function(
                "document.querySelector('.iis-upload-info').innerText.includes('mask.png')"
            )
            page.wait_for_function("document.querySelector('.iis-error').innerText.trim() === ''")
            page.fill(".iis-clicks input", "8")
            page.press(".iis-clicks input", "Enter")
            page.click(".iis-run")
            page.wait_for_function("document.querySelector('.iis-curves').naturalWidth > 0")
            page.wait_for_function("document.querySelector('.iis-panel').naturalWidth > 0")
            assert "NoC@85" in page.inner_text(".iis-status")
            assert page.inner_text(".iis-slider .widget-readout").strip() == "8"
            assert page.evaluate(
                "document.querySelector('.iis-curves').naturalWidth"
            ) > 300  # fmt: skip

            # the slider redraws the panel
            before = page.get_attribute(".iis-panel", "src")
            page.click(".iis-slider .noUi-handle")
            for _ in range(5):
                page.keyboard.press("ArrowLeft")
            page.wait_for_function(
                "document.querySelector('.iis-slider .widget-readout').innerText.trim() === '3'"
            )
            page.wait_for_function(
                f"document.querySelector('.iis-panel').getAttribute('src') !== {before!r}"
            )
            page.wait_for_function(
                "document.querySelector('.iis-downloads').innerText.includes('panel_click3.png')"
            )

            # the CSV link downloads the scores: 8 rows, one per click
            with page.expect_download() as download:
                page.click(".iis-downloads a[download='scores.csv']")
            csv = Path(download.value.path()).read_text().splitlines()
            assert csv[0].split(",")[:6] == ["model", "robot", "image", "seed", "settings", "click"]
            assert len(csv) == 1 + 8

            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert shot.stat().st_size > 10_000
