"""`kedro viz build`: the DAG data of every pipeline, and the page it renders in a browser."""

import json
import subprocess
import sys

from tests.ui.browser import publish, render, screenshot_path, serve_folder

# Opens the built app with the feature tour closed and the light theme, as a returning user.
VIEW = """<!DOCTYPE html><script>
localStorage.setItem("KedroViz", JSON.stringify({showFeatureHints: false, theme: "light"}));
location.replace("./");
</script>"""


def test_kedro_viz_build_shows_the_chain_by_layer(project_copy, tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "kedro", "viz", "build"],
        cwd=project_copy,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    build = project_copy / "build"
    graph = json.loads((build / "api" / "main").read_text())
    names = {node["name"] for node in graph["nodes"]}
    assert {
        "ingest_images",
        "build_training_groups",
        "train_model",
        "trained_model",
        "images",
    } <= names
    assert {"report_training", "training_report", "report_evaluation", "evaluation_report"} <= names
    pipelines = {p["id"] for p in graph["pipelines"]}
    assert {
        "train",
        "ingestion",
        "grouping",
        "training",
        "extract",
        "evaluate",
        "__default__",
    } <= pipelines
    # the edges chain ingestion -> grouping -> training
    by_id = {node["id"]: node["name"] for node in graph["nodes"]}
    edges = {(by_id[e["source"]], by_id[e["target"]]) for e in graph["edges"]}
    assert ("images", "train_model") in edges and ("train_groups", "train_model") in edges
    assert ("train_model", "trained_model") in edges
    # datasets sit in layers ordered along the chain; every stage is a tag
    assert graph["layers"] == ["intermediate", "primary", "models", "model_output", "reporting"]
    layer = {node["name"]: node.get("layer") for node in graph["nodes"] if node["type"] == "data"}
    assert (
        layer["images"],
        layer["train_groups"],
        layer["trained_model"],
        layer["global_codes"],
    ) == (
        "intermediate",
        "primary",
        "models",
        "model_output",
    )
    assert layer["global_tsne_figure"] == layer["training_report"] == "reporting"
    assert {"ingestion", "grouping", "training", "extract", "evaluate"} <= {
        t["id"] for t in graph["tags"]
    }

    # the page itself, rendered by headless Chromium
    (build / "ugvae-view.html").write_text(VIEW)
    shot = screenshot_path(tmp_path, "kedro_viz.png")
    with serve_folder(build) as url:
        dom = render(f"{url}/ugvae-view.html", shot, budget_ms=15000, size="1600,1000")
    assert "train_model" in dom or "Train Model" in dom, dom[-2000:]
    assert "trained_model" in dom or "Trained Model" in dom
    for layer_name in ("intermediate", "model_output", "reporting"):
        assert layer_name in dom
    assert shot.stat().st_size > 10_000
    publish(shot)
