"""Headless Chromium for UI tests: render a page, return its DOM, keep a screenshot.

Chromium is required, never optional: `.ci/run` installs it (Debian's `chromium`), and a
missing browser fails the test naming the fix. Screenshots go to ``$UGVAE_SCREENSHOT_DIR``
(default: the test's tmp folder); with ``UGVAE_UPDATE_SCREENSHOTS=1`` they are also copied to
``docs/images/`` for the README.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import socket
import subprocess
import tempfile
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("UGVAE_CHROMIUM", "/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--mute-audio",
]


def chromium() -> str:
    """The browser's path, or an assertion error saying how to install it."""
    path = shutil.which(CHROMIUM) or shutil.which("chromium")
    assert path, (
        f"headless Chromium not found at {CHROMIUM}: install it (`apt-get install -y chromium`, "
        "as .ci/run does) or set UGVAE_CHROMIUM to its path"
    )
    return path


def render(url: str, screenshot: Path, *, budget_ms: int = 15000, size: str = "1400,900") -> str:
    """Load ``url``, let its scripts run for ``budget_ms`` of virtual time; return the DOM.

    The screenshot of the same page is written to ``screenshot`` (PNG).
    """
    browser = chromium()
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ugvae-chromium-") as profile:
        common = [
            browser,
            *FLAGS,
            f"--user-data-dir={profile}",
            f"--window-size={size}",
            f"--virtual-time-budget={budget_ms}",
        ]
        dom = subprocess.run(
            [*common, "--dump-dom", url],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert dom.returncode == 0, dom.stderr[-2000:]
        shot = subprocess.run(
            [*common, f"--screenshot={screenshot}", url],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert shot.returncode == 0 and screenshot.exists(), shot.stderr[-2000:]
    return dom.stdout


def screenshot_path(tmp_path: Path, name: str) -> Path:
    """Where a test keeps screenshot ``name``: ``$UGVAE_SCREENSHOT_DIR`` or ``tmp_path``."""
    folder = Path(os.environ.get("UGVAE_SCREENSHOT_DIR") or tmp_path / "screenshots")
    return folder / name


def publish(screenshot: Path) -> None:
    """Copy a screenshot to docs/images/ when ``UGVAE_UPDATE_SCREENSHOTS=1``."""
    if os.environ.get("UGVAE_UPDATE_SCREENSHOTS") == "1":
        target = PROJECT_ROOT / "docs" / "images" / screenshot.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(screenshot, target)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def serve_folder(folder: Path):
    """Serve ``folder`` over http on 127.0.0.1 in a thread; yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep pytest output clean
        pass
