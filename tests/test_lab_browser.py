"""``make lab`` in headless Chromium, as a new reader uses it.

Starts the server command that ``make lab`` runs (``python -m iislib.apps.lab``; its root is a
copy of ``notebooks/`` and ``jupytext.toml`` in a temporary folder, so that JupyterLab's
autosave and checkpoints never touch the checkout), opens the address it prints, and checks
that the start page opens as a notebook; then double-clicks ``03_quantitative.py`` in the file
browser, checks that a notebook panel opens with its Python kernel, runs every cell (smoke
mode: the CI variable is set for the server), checks that the plan is printed in the first
code cell, before the sweep's cell, moves the click slider, whose figure must be redrawn,
and saves: the source keeps its bytes, the outputs go to the paired ``.ipynb``.
The last screen goes to ``build/lab_browser.png``.

Needs Debian's ``/usr/bin/chromium`` and the JupyterLab setting of ``lab-settings/`` installed
in the environment (``make env``): without the setting, the double-click opens Python text,
which is the failure this test is for.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

from iislib import paths
from iislib.apps import lab
from tests.test_demo_browser import CHROMIUM, CHROMIUM_ARGS, TIMEOUT_MS, _stop, _unavailable

pytestmark = pytest.mark.browser

NOTEBOOK = "03_quantitative.py"


@pytest.fixture(scope="module")
def lab_url(tmp_path_factory, data_root: Path) -> Iterator[tuple[str, Path]]:
    """The address ``make lab``'s command prints, and the root it serves."""
    if not CHROMIUM.exists():
        _unavailable(f"{CHROMIUM} not found (apt-get install chromium)")
    if lab.installed_viewers().get("python") != lab.VIEWERS["python"]:
        pytest.fail(f"{Path(sys.prefix) / lab.SETTINGS_FILE} is not installed: run `make env`")
    folder = tmp_path_factory.mktemp("lab")
    root = folder / "project"
    (root / "notebooks").mkdir(parents=True)
    for src in paths.NOTEBOOKS.glob("*.py"):
        shutil.copy(src, root / "notebooks")
    shutil.copy(paths.ROOT / "jupytext.toml", root)
    port = lab.free_port()
    env = dict(
        os.environ,
        CI="1",  # the notebooks' smoke switch: 2 images, 4 clicks
        IISLIB_DATA=str(data_root.resolve()),
        OMP_NUM_THREADS="1",
        # this test's own user settings and workspaces: only the shipped setting applies
        JUPYTERLAB_SETTINGS_DIR=str(folder / "user-settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(folder / "workspaces"),
    )
    env.pop("JUPYTER_TOKEN", None)  # the command makes its own
    log_path = folder / "lab.log"
    log = log_path.open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "iislib.apps.lab", "--root", str(root), "--port", str(port)],
        stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                pytest.fail(f"the lab server exited ({proc.returncode}): {log_path.read_text()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"the lab server did not answer in 120 s: {log_path.read_text()}")
                time.sleep(0.5)
        printed = re.search(r"lab: open (http://\S+)", log_path.read_text())
        assert printed, log_path.read_text()
        url = printed.group(1)
        assert url.startswith(f"http://127.0.0.1:{port}/lab/tree/notebooks/00_start_here.py?token=")
        yield url, root
    finally:
        _stop(proc)
        log.close()


def test_a_double_click_opens_a_paper_notebook_that_runs_and_redraws(lab_url):
    from playwright.sync_api import sync_playwright

    url, root = lab_url

    shots = paths.BUILD / "lab_browser.png"
    shots.parent.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                    args=CHROMIUM_ARGS)  # fmt: skip
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(TIMEOUT_MS)
        try:
            page.goto(url, timeout=TIMEOUT_MS)
            # the printed address opens the start page, as a notebook with its markdown rendered
            start = page.locator(".jp-NotebookPanel", has_text="Start here")
            start.locator(".jp-MarkdownCell h1").first.wait_for()
            assert "03_quantitative.py" in start.locator(".jp-MarkdownCell").first.inner_text()

            # the file browser shows notebooks/ (the start page's folder): double-click 03
            item = page.locator(".jp-DirListing-item", has_text=NOTEBOOK)
            item.wait_for()
            item.dblclick()
            tab = page.locator(".lm-TabBar-tab.jp-mod-current", has_text=NOTEBOOK)
            tab.wait_for()
            panel = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
            panel.locator(".jp-Notebook .jp-CodeCell").first.wait_for()
            assert panel.locator(".jp-FileEditor").count() == 0  # a notebook, not Python text
            title = panel.locator(".jp-MarkdownCell h1").first.inner_text()
            assert title.startswith("3. Quantitative comparison"), title
            # its kernel: the toolbar names it once the session has started ("No Kernel" before)
            panel.locator(".jp-Toolbar-kernelName", has_text="Python 3").wait_for()
            page.get_by_text("| Idle").wait_for()  # the status bar: kernel connected, idle

            # run every cell, as a reader does (Run > Run All Cells); the kernel is in smoke mode
            page.locator(".lm-MenuBar-item", has_text="Run").click()
            page.locator(".lm-Menu-item", has_text="Run All Cells").first.click()
            prompts = panel.locator(".jp-CodeCell .jp-InputPrompt")
            page.wait_for_function(
                "els => els.length > 0 && els.every(el => /\\[\\d+\\]/.test(el.textContent))",
                arg=prompts.element_handles(), timeout=TIMEOUT_MS * 2,
            )  # fmt: skip
            outputs = [c.text_content() for c in panel.locator(".jp-CodeCell").all()]
            assert not [o for o in outputs if "Traceback" in o], outputs
            plan = next(i for i, o in enumerate(outputs) if "[plan]" in o)
            sweep = next(i for i, o in enumerate(outputs) if "rows (one per model" in o)
            assert plan < sweep and "SMOKE RUN" in outputs[plan], outputs[plan]

            # the click slider redraws its figure
            view = panel.locator(".widget-vbox", has=page.locator(".widget-slider")).first
            view.scroll_into_view_if_needed()
            readout = view.locator(".widget-readout")
            img = view.locator("img").first
            before = (readout.inner_text().strip(), img.get_attribute("src"))
            view.locator(".noUi-handle").click()
            page.keyboard.press("ArrowLeft")
            page.wait_for_function("([el, v]) => el.textContent.trim() !== v",
                                   arg=[readout.element_handle(), before[0]])  # fmt: skip
            page.wait_for_function("([el, s]) => el.getAttribute('src') !== s",
                                   arg=[img.element_handle(), before[1]])  # fmt: skip
            assert int(readout.inner_text()) == int(before[0]) - 1

            # saving writes the outputs to the paired .ipynb and leaves the source's bytes alone
            panel.locator(".jp-Notebook").click(position={"x": 5, "y": 5})
            page.keyboard.press("Control+s")
            page.wait_for_function("!document.querySelector('.lm-TabBar-tab.jp-mod-current')"
                                   ".classList.contains('jp-mod-dirty')")  # fmt: skip
        finally:  # the picture of a failure is the useful one
            page.screenshot(path=str(shots))
            browser.close()
    saved = root / "notebooks" / NOTEBOOK
    assert saved.read_bytes() == (paths.NOTEBOOKS / NOTEBOOK).read_bytes()
    paired = nbformat.read(saved.with_suffix(".ipynb"), as_version=4)
    assert any(c.get("outputs") for c in paired.cells if c.cell_type == "code")
