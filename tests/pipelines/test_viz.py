"""`kedro viz build` renders the project's DAG data: every pipeline and the training chain."""

import json
import subprocess
import sys


def test_kedro_viz_build_contains_the_training_dag(project_copy):
    done = subprocess.run(
        [sys.executable, "-m", "kedro", "viz", "build"],
        cwd=project_copy, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    graph = json.loads((project_copy / "build" / "api" / "main").read_text())
    names = {node["name"] for node in graph["nodes"]}
    assert {"ingest_images", "build_training_groups", "train_ugvae", "ugvae_model", "images"} <= names
    pipelines = {p["id"] for p in graph["pipelines"]}
    assert {"train", "ingestion", "grouping", "training", "__default__"} <= pipelines
    # the edges chain ingestion -> grouping -> training
    by_id = {node["id"]: node["name"] for node in graph["nodes"]}
    edges = {(by_id[e["source"]], by_id[e["target"]]) for e in graph["edges"]}
    assert ("images", "train_ugvae") in edges and ("train_groups", "train_ugvae") in edges
    assert ("train_ugvae", "ugvae_model") in edges
