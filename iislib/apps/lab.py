"""``make lab``: the paper's notebooks in JupyterLab, served to this machine only.

    python -m iislib.apps.lab [--port N] [--root DIR]

Starts JupyterLab (the ``jupyter-lab`` beside this Python) on 127.0.0.1, on ``--port`` (default
``$LAB_PORT``, else a free port), in the project folder (``--root``), with a fresh random token
(``$JUPYTER_TOKEN`` when set), and prints the address of the start page,
``notebooks/00_start_here.py``. The notebooks (``notebooks/*.py``, jupytext text) open as
notebooks on a double-click through a JupyterLab setting that the ``lab-settings`` package
installs into the environment (``make env`` and ``environment.yml`` install it):
``{sys.prefix}/share/jupyter/lab/settings/overrides.d/iislib.json`` makes jupytext's "Jupytext
Notebook" the default viewer of Python files (docs/decisions.md, "Notebooks open as notebooks").
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import socket
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from iislib import paths

SETTINGS_FILE = Path("share", "jupyter", "lab", "settings", "overrides.d", "iislib.json")
"""Where the setting is installed, relative to the environment's prefix: ``overrides.d`` of
JupyterLab's application settings folder, read at every start (a user's own settings win)."""
DOCMANAGER = "@jupyterlab/docmanager-extension:plugin"
VIEWERS = {"python": "Jupytext Notebook"}
"""The default viewers the setting sets: file type -> document factory (jupytext's)."""
START_PAGE = "notebooks/00_start_here.py"


def installed_viewers(prefix: str | Path = sys.prefix) -> dict[str, str]:
    """The default viewers the installed setting sets in the environment at ``prefix`` ({} when
    the file is missing: Python files then open as text)."""
    path = Path(prefix) / SETTINGS_FILE
    if not path.is_file():
        return {}
    return dict(json.loads(path.read_text()).get(DOCMANAGER, {}).get("defaultViewers", {}))


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def command(port: int, root: Path, as_root: bool | None = None) -> list[str]:
    """The ``jupyter-lab`` command line: loopback only, exactly ``port`` (no retry on another
    one, so the printed address is right), ``root`` as the file browser's top, the start page
    at ``/``. ``--allow-root`` only for the root user (JupyterLab refuses root without it).
    No token here: command lines are visible to every user, so it goes in ``JUPYTER_TOKEN``."""
    lab = Path(sys.executable).with_name("jupyter-lab")
    exe = str(lab) if lab.exists() else shutil.which("jupyter-lab") or "jupyter-lab"
    cmd = [exe, "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
           "--ServerApp.port_retries=0", f"--ServerApp.root_dir={root}",
           f"--LabApp.default_url=/lab/tree/{START_PAGE}"]  # fmt: skip
    if os.geteuid() == 0 if as_root is None else as_root:
        cmd.append("--allow-root")
    return cmd


def environment(token: str, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The server's environment: ``base`` (default ``os.environ``) with the token, without
    ``MPLBACKEND`` (the Makefile exports Agg for the headless runs; the kernels draw inline),
    and with an absolute ``IISLIB_DATA`` (a kernel runs in its notebook's folder)."""
    env = dict(os.environ if base is None else base)
    env["JUPYTER_TOKEN"] = token
    env.pop("MPLBACKEND", None)
    if env.get("IISLIB_DATA"):
        env["IISLIB_DATA"] = str(Path(env["IISLIB_DATA"]).absolute())
    return env


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m iislib.apps.lab",
                                description="The paper's notebooks in JupyterLab on 127.0.0.1.")  # fmt: skip
    p.add_argument("--port", type=int, default=int(os.environ.get("LAB_PORT") or 0) or None,
                   help="port on 127.0.0.1 (default: $LAB_PORT, else a free one)")  # fmt: skip
    p.add_argument("--root", type=Path, default=paths.ROOT,
                   help="top folder of the file browser (default: the project)")  # fmt: skip
    args = p.parse_args(argv)
    root = args.root.resolve()
    if not (root / START_PAGE).is_file():
        print(f"lab: {root / START_PAGE} not found: --root must be the project folder",
              file=sys.stderr)  # fmt: skip
        return 2
    if installed_viewers().get("python") != VIEWERS["python"]:
        print(f"lab: {Path(sys.prefix) / SETTINGS_FILE} is missing: notebooks/*.py open as text "
              "(right click > Open With > Jupytext Notebook). `make env` or "
              "`pip install ./lab-settings` installs it.", file=sys.stderr)  # fmt: skip
    port = args.port or free_port()
    token = os.environ.get("JUPYTER_TOKEN") or secrets.token_hex(24)
    print(f"lab: open http://127.0.0.1:{port}/lab/tree/{START_PAGE}?token={token} "
          "(Ctrl-C stops it)", flush=True)  # fmt: skip
    cmd = command(port, root)
    os.execvpe(cmd[0], cmd, environment(token))  # Ctrl-C and signals go to JupyterLab itself
    return 0  # pragma: no cover


if __name__ == "__main__":
    sys.exit(main())
