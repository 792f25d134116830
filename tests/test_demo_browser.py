"""The demo notebook served by Voilà and driven in headless Chromium, as a person would use it.

Starts Voilà on a free loopback port, uploads an image and a mask written here, runs the demo,
waits for the curves, moves the click slider and checks that the panel is redrawn, downloads the
CSV, and checks that a bad mask shows an error and leaves the app usable. A screenshot goes to
``build/demo_browser.png``. In "you click" mode it picks a benchmark sample and ritm-compact,
clicks on the picture (one positive, one negative click), checks the prediction and the IoU
after each, then compares with the robots (``build/demo_browser_you_click.png``). The clickable
picture is also clicked in JupyterLab itself (``build/jupyterlab_click_image.png``). Every
process started here (Voilà, JupyterLab and their kernels) is stopped.

Needs Debian's ``/usr/bin/chromium`` (``apt-get install chromium``; ``playwright install`` cannot
download browsers here). Without it the test skips locally and fails under CI.
"""

from __future__ import annotations

import contextlib
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


DEMO_CONFIG = paths.ROOT / "demo"  # voila.json: the server settings `make demo` passes


def _require_browser() -> None:
    if not CHROMIUM.exists():
        _unavailable(f"{CHROMIUM} not found (apt-get install chromium)")
    for module in ("playwright", "voila", "jupytext"):
        try:
            __import__(module)
        except ImportError:
            _unavailable(f"python package {module} is not installed")


@contextlib.contextmanager
def serve_demo(folder: Path, *options: str) -> Iterator[tuple[str, subprocess.Popen]]:
    """Voila serving the demo notebook as `make demo` does (its settings file, 127.0.0.1), with
    ``options`` (traitlets flags) added; yields (url, process) once it listens, then stops it."""
    import jupytext

    _require_browser()
    notebook = folder / "05_demo.ipynb"
    jupytext.write(jupytext.read(NOTEBOOK), notebook)
    port = _free_port()
    log_path = folder / "voila.log"
    log = log_path.open("w")
    env = dict(os.environ, MPLBACKEND="Agg", OMP_NUM_THREADS="1")
    if env.get("IISLIB_DATA"):  # Voilà runs the kernel in another folder: make it absolute
        env["IISLIB_DATA"] = str(Path(env["IISLIB_DATA"]).resolve())
    voila = Path(sys.executable).with_name("voila")
    proc = subprocess.Popen(
        [str(voila), str(notebook), "--no-browser", "--Voila.ip=127.0.0.1", f"--port={port}",
         f"--Voila.config_file_paths={DEMO_CONFIG}", *options],
        cwd=folder, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                pytest.fail(f"voila exited ({proc.returncode}): {log_path.read_text()}")
            try:  # listening is enough: a GET of the page would start a kernel
                socket.create_connection(("127.0.0.1", port), timeout=2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("voila did not answer within 120 s")
                time.sleep(0.5)
        yield url, proc
    finally:
        _stop(proc)
        log.close()


@pytest.fixture(scope="module")
def voila_url(tmp_path_factory) -> Iterator[str]:
    with serve_demo(tmp_path_factory.mktemp("voila")) as (url, _):
        yield url


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


def _status_iou(page) -> tuple[int, float, str]:
    """(clicks, IoU, last click) read from the "you click" status line."""
    import re

    text = page.inner_text(".iis-human-status")
    m = re.search(r"(\d+) clicks? \(.*?\): IoU ([0-9.]+).*last click ([+-] at \(row \d+, col \d+\))",
                  text)  # fmt: skip
    assert m, text
    return int(m.group(1)), float(m.group(2)), m.group(3)


def _pixel(last: str) -> tuple[int, int]:
    """(row, col) from "+ at (row 12, col 34)"."""
    import re

    m = re.search(r"row (\d+), col (\d+)", last)
    assert m, last
    return int(m.group(1)), int(m.group(2))


def _near(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return abs(a[0] - b[0]) <= 1 and abs(a[1] - b[1]) <= 1


def test_you_click_mode_clicks_predicts_and_compares(voila_url, data_root):
    """Pick a sample and ritm-compact, click the object (left) and a false positive (right);
    after each click the prediction and the IoU change, and match the same clicks run here;
    then the seven robots' curves and the per-click table appear."""
    from playwright.sync_api import sync_playwright
    from scipy import ndimage

    from iislib.core.robots import get_robot
    from iislib.experiment.data import load_dataset
    from iislib.experiment.session import HumanSession

    # the clicks, chosen here: rritm's first click (on the object), then a negative click at the
    # centre of the largest false positive that ritm-compact predicts after it, on the first
    # benchmark image where there is one and that click changes the IoU
    ds_name = "berkeley"
    ds = load_dataset(ds_name, root=data_root)
    for name in ds.names[:10]:
        sample = ds[name]
        here = HumanSession(sample.image, sample.gt, "ritm-compact", name=name)
        pos = get_robot("rritm")(np.zeros_like(sample.gt), sample.gt, [], None)
        iou1 = here.click(pos.row, pos.col, True)
        fp = here.pred & ~sample.gt
        if not fp.any():
            continue
        dt = ndimage.distance_transform_edt(fp)
        neg_row, neg_col = (int(v) for v in np.unravel_index(dt.argmax(), dt.shape))
        iou2 = here.click(neg_row, neg_col, False)
        if round(iou2, 3) != round(iou1, 3):
            break
    else:
        pytest.fail("no image among the first 10 where a negative click changes the IoU")
    h, w = sample.gt.shape

    shot = paths.BUILD / "demo_browser_you_click.png"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                    args=CHROMIUM_ARGS)  # fmt: skip
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 1600})
            page.set_default_timeout(TIMEOUT_MS)
            page.goto(voila_url, wait_until="domcontentloaded", timeout=TIMEOUT_MS)
            page.wait_for_selector(".iis-mode")
            page.click(".iis-mode button:has-text('you click')")
            page.click(".iis-source button:has-text('benchmark sample')")
            page.select_option(".iis-dataset select", ds_name)
            page.select_option(".iis-sample select", name)
            page.select_option(".iis-model select", "ritm-compact")
            page.click(".iis-start")
            img = ".iis-click-image img"
            page.wait_for_function(f"document.querySelector('{img}')?.naturalWidth === {w}")
            page.wait_for_function(
                "document.querySelector('.iis-human-status').innerText.includes('no click yet')"
            )

            def click_pixel(row: int, col: int, button: str) -> None:
                box = page.locator(img).bounding_box()
                page.mouse.click(box["x"] + (col + 0.5) * box["width"] / w,
                                 box["y"] + (row + 0.5) * box["height"] / h,
                                 button=button)  # fmt: skip

            src0 = page.get_attribute(img, "src")
            click_pixel(pos.row, pos.col, "left")
            page.wait_for_function(
                "document.querySelector('.iis-human-status').innerText.includes('1 click ')"
            )
            n, got1, last = _status_iou(page)
            placed = [_pixel(last)]
            # a click lands within one pixel of the aimed one (the browser rounds pointer
            # positions to whole screen pixels, and the picture is shown at about 1:1)
            assert last[0] == "+" and _near(placed[0], (pos.row, pos.col))
            assert got1 > 0  # from nothing predicted (IoU 0) to the object
            src1 = page.get_attribute(img, "src")
            assert src1 != src0
            conf1 = page.get_attribute(".iis-confusion", "src")

            click_pixel(neg_row, neg_col, "right")
            page.wait_for_function(
                "document.querySelector('.iis-human-status').innerText.includes('2 clicks')"
            )
            n, got2, last = _status_iou(page)
            placed.append(_pixel(last))
            assert last[0] == "-" and _near(placed[1], (neg_row, neg_col))
            assert got2 != got1
            assert page.get_attribute(img, "src") != src1
            assert page.get_attribute(".iis-confusion", "src") != conf1
            assert page.inner_text(".iis-error").strip() == ""

            page.click(".iis-compare-robots")
            page.wait_for_function("document.querySelector('.iis-compare-curves').naturalWidth > 0")
            page.wait_for_function(
                "document.querySelector('.iis-status').innerText"
                ".includes('compared with 7 robots over 2 clicks')"
            )
            table = page.inner_text(".iis-compare-table")
            for robot in ("r01", "r02", "r03", "r04", "r05", "rgto99", "rritm"):
                assert robot in table
            assert page.evaluate("document.querySelector('.iis-compare-curves').naturalWidth") > 300
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert shot.stat().st_size > 10_000
    # the page's IoUs are those of the same clicks placed here (same model, same loop)
    check = HumanSession(sample.image, sample.gt, "ritm-compact", name=name)
    assert check.click(*placed[0], True) == pytest.approx(got1, abs=1e-3)
    assert check.click(*placed[1], False) == pytest.approx(got2, abs=1e-3)


def test_click_image_in_jupyterlab_reports_pixels_without_lab_menus(tmp_path):
    """The clickable picture of the "you click" mode in JupyterLab itself (notebook 06 records
    there): a left, a right and a shift click reach the kernel as (row, col) pixels of the
    picture, and the right click does not open JupyterLab's context menu over the notebook."""
    if not CHROMIUM.exists():
        _unavailable(f"{CHROMIUM} not found (apt-get install chromium)")
    import nbformat
    from playwright.sync_api import sync_playwright

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells = [
        nbformat.v4.new_code_cell(
            "import io\nimport numpy as np\nfrom PIL import Image\n"
            "from iislib.apps.demo_app import ClickImage\n"
            "buf = io.BytesIO()\n"
            "Image.fromarray(np.zeros((100, 150, 3), np.uint8)).save(buf, format='PNG')\n"
            "w, got = ClickImage(), []\nw.on_click(got.append)\n"
            "w.show_png(buf.getvalue(), (100, 150), side=300)\nw"
        ),
        nbformat.v4.new_code_cell(
            "print('GOT', [(g['row'], g['col'], g['button'], g['shift']) for g in got])"
        ),
    ]  # fmt: skip
    nbformat.write(nb, tmp_path / "click.ipynb")
    port = _free_port()
    log = (tmp_path / "lab.log").open("w")
    lab = Path(sys.executable).with_name("jupyter-lab")
    proc = subprocess.Popen(
        [str(lab), "--allow-root", "--no-browser", "--ServerApp.token=", "--ServerApp.password=",
         "--ServerApp.ip=127.0.0.1", f"--port={port}", f"--ServerApp.root_dir={tmp_path}"],
        cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        env=dict(os.environ, MPLBACKEND="Agg", OMP_NUM_THREADS="1"),
    )  # fmt: skip
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                        args=CHROMIUM_ARGS)  # fmt: skip
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            try:
                deadline = time.monotonic() + 120
                while True:
                    try:
                        page.goto(
                            f"http://127.0.0.1:{port}/lab/tree/click.ipynb?reset",
                            timeout=TIMEOUT_MS,
                        )
                        break
                    except Exception:
                        if proc.poll() is not None or time.monotonic() > deadline:
                            pytest.fail(
                                f"JupyterLab did not answer: {(tmp_path / 'lab.log').read_text()}"
                            )
                        time.sleep(1)
                cells = page.locator(".jp-Notebook .jp-CodeCell")
                cells.nth(1).wait_for(timeout=TIMEOUT_MS)
                # the kernel is connected once the status bar says so; a cell run before that can
                # be dropped by the page, so each run is checked (its prompt shows [*] or [n])
                page.get_by_text("| Idle").wait_for(timeout=TIMEOUT_MS)

                def run(i: int) -> None:
                    prompt = cells.nth(i).locator(".jp-InputPrompt")
                    for _ in range(3):
                        prompt.click()  # selects the cell in command mode
                        page.keyboard.press("Shift+Enter")
                        try:
                            page.wait_for_function("el => /\\[(\\*|\\d+)\\]/.test(el.textContent)",
                                                   arg=prompt.element_handle(), timeout=15_000)  # fmt: skip
                            return
                        except Exception:
                            continue
                    pytest.fail(f"JupyterLab did not run cell {i}")

                run(0)
                img = cells.nth(0).locator(".jp-OutputArea img")
                img.wait_for(timeout=TIMEOUT_MS)
                page.wait_for_function("el => el.complete && el.naturalWidth === 150",
                                       arg=img.element_handle(), timeout=TIMEOUT_MS)  # fmt: skip
                box = img.bounding_box()

                def at(row: int, col: int) -> dict[str, float]:  # the centre of pixel (row, col)
                    return {
                        "x": (col + 0.5) * box["width"] / 150,
                        "y": (row + 0.5) * box["height"] / 100,
                    }

                img.click(position=at(20, 30))
                img.click(position=at(80, 120), button="right")
                page.wait_for_timeout(500)
                assert page.locator(".lm-Menu").count() == 0, "JupyterLab's context menu opened"
                img.click(position=at(50, 60), modifiers=["Shift"])
                page.wait_for_timeout(1000)
                run(1)
                out = cells.nth(1).locator(".jp-OutputArea-output")
                out.wait_for(timeout=TIMEOUT_MS)
                text = out.inner_text()
            finally:  # the picture of a failure is the useful one
                page.screenshot(path=str(paths.BUILD / "jupyterlab_click_image.png"))
                browser.close()
        assert "GOT [(20, 30, 0, False), (80, 120, 2, False), (50, 60, 0, True)]" in text, text
    finally:
        _stop(proc)
        log.close()
