"""Headless Chromium for UI tests: render a page, return its DOM, keep a screenshot.

Chromium is required, never optional: `.ci/run` installs it (Debian's `chromium`), and a
missing browser fails the test naming the fix. Screenshots go to ``$UGVAE_SCREENSHOT_DIR``
(default: the test's tmp folder); with ``UGVAE_UPDATE_SCREENSHOTS=1`` they are also copied to
``docs/images/`` for the README.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
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


def render(
    url: str,
    screenshot: Path,
    *,
    budget_ms: int = 15000,
    size: str = "1400,900",
    scale: float = 1.0,
) -> str:
    """Load ``url``, let its scripts run for ``budget_ms`` of virtual time; return the DOM.

    The screenshot of the same page is written to ``screenshot`` (PNG), ``scale`` device
    pixels per CSS pixel (2: a window of ``size`` is captured at twice its width and height).
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
            f"--force-device-scale-factor={scale:g}",
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


def storage_page(items: dict[str, object], then: str) -> str:
    """An HTML page that stores ``items`` (key -> JSON value) in its origin's localStorage and
    goes on to ``then``: served from an app's origin, it opens the app as a returning user
    (tours and first-visit panels closed, chosen settings)."""
    script = "".join(
        f"localStorage.setItem({json.dumps(key)}, {json.dumps(json.dumps(value))});"
        for key, value in items.items()
    )
    return f"<!DOCTYPE html><script>{script}location.replace({json.dumps(then)});</script>"


@contextlib.contextmanager
def proxy_origin(target: str, pages: dict[str, str]):
    """An http origin on 127.0.0.1 that forwards every request to ``target`` (a base URL) and
    answers the paths of ``pages`` (e.g. ``/ugvae-view.html`` -> HTML) itself; yields its base
    URL. A page there shares the proxied app's origin, hence its localStorage."""
    handler = functools.partial(_ProxyHandler, target.rstrip("/"), pages)
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    _HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "upgrade", "host"}

    def __init__(self, target: str, pages: dict[str, str], *args, **kwargs) -> None:
        self.target, self.pages = target, pages
        super().__init__(*args, **kwargs)

    def _forward(self) -> None:
        if self.path.split("?")[0] in self.pages:
            status, headers = 200, [("Content-Type", "text/html; charset=utf-8")]
            body = self.pages[self.path.split("?")[0]].encode()
        else:
            length = int(self.headers.get("Content-Length") or 0)
            request = urllib.request.Request(
                self.target + self.path,
                data=self.rfile.read(length) if length else None,
                method=self.command,
                headers={
                    k: v for k, v in self.headers.items() if k.lower() not in self._HOP_BY_HOP
                },
            )
            try:
                with urllib.request.urlopen(request, timeout=60) as response:
                    status, headers, body = response.status, response.getheaders(), response.read()
            except urllib.error.HTTPError as error:
                status, headers, body = error.code, error.headers.items(), error.read()
        self.send_response(status)
        for key, value in headers:
            if key.lower() not in self._HOP_BY_HOP | {"content-length"}:
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _forward

    def log_message(self, *args) -> None:
        pass
