"""The demo server frees the kernels of closed pages and bounds how many are alive.

Voilà starts one kernel (about 160 MB) per page view. With ``demo/voila.json`` (what ``make
demo`` passes) a kernel whose page is gone is culled, a page kept open keeps its kernel, and a
page beyond ``DemoKernelManager.max_kernels`` gets a "the demo is full" page. The browser tests
start the real server on 127.0.0.1 with a short cull timeout (the same settings, on the command
line) and open and close pages in headless Chromium; kernels are counted as the server's
ipykernel child processes (standalone Voilà serves no ``/api/kernels`` listing).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from pathlib import Path

import pytest

from iislib import paths
from tests.test_demo_browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    DEMO_CONFIG,
    TIMEOUT_MS,
    _descendants,
    serve_demo,
)

# The test's idle timeout, set as `make demo DEMO_CULL_TIMEOUT=10` does: the shipped 60 s would
# make the test slow. Everything else (the culler's 10 s interval, the kernel manager) comes from
# demo/voila.json, so without that file nothing is culled here (jupyter_server checks every 300 s).
CULL_S = 10
CULL_FLAGS = (f"--MappingKernelManager.cull_idle_timeout={CULL_S}",)
SETTINGS = DEMO_CONFIG / "voila.json"
PASS_S = (
    json.loads(SETTINGS.read_text())["MappingKernelManager"]["cull_interval"]
    if SETTINGS.exists()
    else 10
)


def _kernels(server: subprocess.Popen) -> list[int]:
    """Pids of the server's live kernels."""
    out = []
    for pid in _descendants(server.pid):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"ipykernel" in cmd:
            out.append(pid)
    return out


def _wait_kernels(server: subprocess.Popen, n: int, within: float) -> float:
    """Seconds until the server has exactly ``n`` kernels; fails after ``within`` seconds."""
    t0 = time.monotonic()
    while len(got := _kernels(server)) != n:
        if time.monotonic() - t0 > within:
            pytest.fail(f"{len(got)} kernels alive after {within:.0f} s, expected {n}")
        time.sleep(0.5)
    return time.monotonic() - t0


def _open(browser, url: str):
    """A new page showing the demo (its Run button drawn: the kernel is connected)."""
    page = browser.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    reply = page.goto(url, wait_until="domcontentloaded", timeout=TIMEOUT_MS)
    assert reply.status == 200, page.inner_text("body")
    page.wait_for_selector(".iis-run")
    return page


def test_shipped_settings_cull_within_two_minutes_and_bound_the_kernels() -> None:
    conf = json.loads(SETTINGS.read_text())
    cull = conf["MappingKernelManager"]
    assert 0 < cull["cull_idle_timeout"] + cull["cull_interval"] <= 120
    assert cull["cull_connected"] is False  # an open page keeps its kernel
    assert conf["DemoKernelManager"]["max_kernels"] > 0
    from iislib.apps.demo_server import DemoKernelManager

    kind = conf["VoilaConfiguration"]["multi_kernel_manager_class"]
    assert kind == f"{DemoKernelManager.__module__}.{DemoKernelManager.__name__}"


def test_make_demo_passes_the_settings() -> None:
    out = subprocess.run(["make", "-n", "demo", "DEMO_MAX_KERNELS=3",
                          "DEMO_CULL_TIMEOUT=30"], cwd=paths.ROOT, capture_output=True,
                         text=True, check=True).stdout  # fmt: skip
    assert f"--Voila.config_file_paths={DEMO_CONFIG}" in out.replace('"', "")
    assert "--DemoKernelManager.max_kernels=3" in out
    assert "--MappingKernelManager.cull_idle_timeout=30" in out


def test_kernel_manager_refuses_a_kernel_beyond_the_limit(tmp_path) -> None:
    """Real kernels: the second is refused with HTTP 503 and the message; the first's shutdown
    frees the place."""
    from tornado.web import HTTPError

    from iislib.apps.demo_server import DemoKernelManager

    async def scenario() -> None:
        km = DemoKernelManager(max_kernels=1, root_dir=str(tmp_path))
        first = await km.start_kernel(kernel_name="python3")
        try:
            assert km.live_kernels() == 1
            with pytest.raises(HTTPError) as err:
                await km.start_kernel(kernel_name="python3")
            assert err.value.status_code == 503
            assert "The demo is full: 1 page is open" in err.value.reason
            assert km.list_kernel_ids() == [first]
            await km.shutdown_kernel(first)
            second = await km.start_kernel(kernel_name="python3")
            assert km.list_kernel_ids() == [second]
        finally:
            await km.shutdown_all()

    asyncio.run(scenario())


@pytest.mark.browser
def test_closed_pages_free_their_kernels_and_open_ones_keep_them(tmp_path) -> None:
    """Open and close the page four times (once with a reload), keep a fifth open: the kernel
    count comes back to the open page's one within the cull timeout, that page still works
    after more than the timeout, and once it closes the count is back to the baseline (0)."""
    from playwright.sync_api import sync_playwright

    with serve_demo(tmp_path, *CULL_FLAGS) as (url, server), sync_playwright() as p:
        assert _kernels(server) == []
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                    args=CHROMIUM_ARGS)  # fmt: skip
        try:
            most = 0
            for i in range(4):
                page = _open(browser, url)
                if i == 1:  # a reload is a new page view: a new kernel
                    page.reload(wait_until="domcontentloaded")
                    page.wait_for_selector(".iis-run")
                most = max(most, len(_kernels(server)))
                page.close()
            kept = _open(browser, url)
            most = max(most, len(_kernels(server)))
            assert most >= 2  # the views had kernels of their own: something was left to free
            _wait_kernels(server, 1, within=CULL_S + PASS_S + 45)
            # the open page's kernel outlives the idle timeout, and answers
            time.sleep(CULL_S + PASS_S + 2)
            assert len(_kernels(server)) == 1
            kept.click(".iis-mode button:has-text('you click')")
            kept.wait_for_selector(".iis-start", state="visible")
            kept.close()
            _wait_kernels(server, 0, within=CULL_S + PASS_S + 45)
        finally:
            browser.close()


@pytest.mark.browser
def test_a_page_beyond_the_limit_says_the_demo_is_full(tmp_path) -> None:
    """With max_kernels=1, a second page gets the message (HTTP 503, no kernel started); once
    the first page is closed and its kernel culled, the second page opens the demo."""
    from playwright.sync_api import sync_playwright

    flags = (*CULL_FLAGS, "--DemoKernelManager.max_kernels=1")
    with serve_demo(tmp_path, *flags) as (url, server), sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                    args=CHROMIUM_ARGS)  # fmt: skip
        try:
            first = _open(browser, url)
            second = browser.new_page()
            reply = second.goto(url, wait_until="domcontentloaded", timeout=TIMEOUT_MS)
            assert reply.status == 503
            text = second.inner_text("body")
            assert "The demo is full: 1 page is open" in text, text
            assert "Try again in a minute" in text
            assert len(_kernels(server)) == 1
            first.close()
            t0 = time.monotonic()
            while second.reload(wait_until="domcontentloaded").status != 200:
                assert time.monotonic() - t0 < CULL_S + PASS_S + 45, "the limit was not freed"
                time.sleep(2)
            second.wait_for_selector(".iis-run")
            assert len(_kernels(server)) == 1
        finally:
            browser.close()
