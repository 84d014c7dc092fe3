"""The pieces of scripts/screenshots.py (`make screenshots`) that keep a picture honest: the DAG
it draws must be the registered ``__default__`` pipeline, and a page served through its proxy
shares the proxied app's localStorage."""

from __future__ import annotations

import importlib.util
import json
import sys
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread

import pytest

# imported at collection, as the other tests' modules do: importing the pipelines (and so their
# libraries) sets process-wide environment variables a test must not leave changed
import ugvae_pipeline.pipeline_registry  # noqa: F401
from tests.ui.browser import proxy_origin, render, storage_page

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def screenshots():
    spec = importlib.util.spec_from_file_location(
        "screenshots", ROOT / "scripts" / "screenshots.py"
    )
    module = importlib.util.module_from_spec(spec)
    path = list(sys.path)
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path[:] = path
    return module


def _viz_graph(tasks: set[str], datasets: set[str]) -> dict:
    """``kedro viz build``'s api/main, reduced to what the check reads."""
    nodes = [{"name": n, "type": "task", "pipelines": ["__default__"]} for n in tasks]
    nodes += [
        {"name": d, "type": "parameters" if d.startswith("params:") else "data"}
        | {"pipelines": ["__default__"]}
        for d in datasets
    ]
    # a node of another pipeline only (compare's) is not part of the __default__ picture
    nodes.append({"name": "load_tracked_runs", "type": "task", "pipelines": ["compare"]})
    return {"nodes": nodes, "layers": []}


def test_the_drawn_dag_must_be_the_registered_default_pipeline(screenshots, tmp_path):
    tasks, datasets = screenshots.expected_default()
    # today's nodes and datasets, read from register_pipelines()
    assert {"train_model", "score_beta_effect", "ingest_images"} <= tasks
    assert {"image_cache", "images", "trained_model"} <= datasets
    assert not {"train_ugvae", "ugvae_model"} & (tasks | datasets)

    api = tmp_path / "api"
    api.mkdir()
    (api / "main").write_text(json.dumps(_viz_graph(tasks, datasets)))
    shown = screenshots.check_viz_data(tmp_path)
    assert {"train_model", "image_cache", "trained_model"} <= shown
    assert not any(name.startswith("params:") for name in shown)

    # a picture of an older DAG: a node gone, a stale one in its place
    (api / "main").write_text(
        json.dumps(_viz_graph(tasks - {"train_model"} | {"train_ugvae"}, datasets))
    )
    with pytest.raises(screenshots.ScreenshotError) as error:
        screenshots.check_viz_data(tmp_path)
    assert "missing ['train_model'], unexpected ['train_ugvae']" in str(error.value)
    # a stale node alongside today's is refused too
    (api / "main").write_text(json.dumps(_viz_graph(tasks | {"train_ugvae"}, datasets)))
    with pytest.raises(screenshots.ScreenshotError, match=r"unexpected \['train_ugvae'\]"):
        screenshots.check_viz_data(tmp_path)
    # a dataset missing is refused as well
    (api / "main").write_text(json.dumps(_viz_graph(tasks, datasets - {"image_cache"})))
    with pytest.raises(screenshots.ScreenshotError, match=r"datasets .*missing \['image_cache'\]"):
        screenshots.check_viz_data(tmp_path)


class _App(BaseHTTPRequestHandler):
    """A stand-in app: a page that shows its origin's localStorage, an echo, an error."""

    def do_GET(self) -> None:
        if self.path == "/":
            body = b"""<!DOCTYPE html><body><pre id="s"></pre><script>
let shown;  // the app reads its settings as JSON, as kedro viz and the MLflow UI do
try { shown = JSON.parse(localStorage.getItem("app.view_v1")); } catch (e) { shown = "not JSON"; }
document.getElementById("s").textContent = "stored:" + shown;
</script></body>"""
            self._reply(200, body, "text/html")
        else:
            self._reply(404, b'{"error": "no such page"}', "application/json")

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self._reply(201, self.path.encode() + b" " + body, "text/plain")

    def _reply(self, status: int, body: bytes, kind: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def app():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _App)
    Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_proxy_forwards_requests_and_answers_its_own_pages(app):
    with proxy_origin(app, {"/seed.html": "<p>seed</p>"}) as url:
        with urllib.request.urlopen(f"{url}/seed.html?x=1", timeout=10) as response:
            assert response.read() == b"<p>seed</p>"
            assert response.headers["Content-Type"].startswith("text/html")
        request = urllib.request.Request(f"{url}/api/echo?q=2", data=b'{"a": 1}', method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            assert (response.status, response.read()) == (201, b'/api/echo?q=2 {"a": 1}')
        with pytest.raises(urllib.error.HTTPError) as error:
            urllib.request.urlopen(f"{url}/missing", timeout=10)
        assert error.value.code == 404 and error.value.read() == b'{"error": "no such page"}'


def test_a_storage_page_on_the_proxy_seeds_the_apps_local_storage(app, tmp_path):
    page = storage_page({"app.view_v1": "machine_learning"}, "/")
    with proxy_origin(app, {"/seed.html": page}) as url:
        dom = render(f"{url}/seed.html", tmp_path / "seeded.png", budget_ms=3000, size="400,300")
    assert "stored:machine_learning<" in dom
