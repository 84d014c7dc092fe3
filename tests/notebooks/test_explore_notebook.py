"""notebooks/explore_ugvae.ipynb runs top to bottom on a project after a tiny `kedro run`."""

from __future__ import annotations

import os
import re
import signal

import nbformat
import yaml
from nbclient import NotebookClient

from tests.conftest import PROJECT_ROOT

NOTEBOOK = PROJECT_ROOT / "notebooks" / "explore_ugvae.ipynb"


def test_explore_notebook_runs_on_the_latest_model(default_run, monkeypatch):
    monkeypatch.setenv("UGVAE_PROJECT", str(default_run))
    monkeypatch.delenv("UGVAE_MY_IMAGES", raising=False)
    # the kernel imports the package under test, as this process does
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(PROJECT_ROOT / "src"), os.environ.get("PYTHONPATH", "")]))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    # nbclient's event loop puts Python's default SIGINT handler in place of one it finds
    # ignored (as in a run started with nohup or in the background): put back what was there
    sigint = signal.getsignal(signal.SIGINT)
    try:
        NotebookClient(notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    finally:
        signal.signal(signal.SIGINT, sigint)

    outputs = {i: cell.get("outputs", []) for i, cell in enumerate(notebook.cells) if cell.cell_type == "code"}
    assert not [o for cell in outputs.values() for o in cell if o.output_type == "error"]
    text = "\n".join(
        o.get("text", "") + str(o.get("data", {}).get("text/plain", ""))
        for cell in outputs.values() for o in cell
    )
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)  # rich colours in the log and reprs
    assert "trained_model" in text and "global_codes" in text          # the catalog was loaded
    assert "UGVAEConfig(" in text                                       # the trained model
    assert "(45, " in text                                              # 45 evaluation groups
    assert "wrote 12 held-out images" in text                           # the demo group
    dim_beta = yaml.safe_load((PROJECT_ROOT / "conf/base/parameters_training.yml").read_text())["model"]["dim_beta"]
    assert f"group: (1, 12, 1, 28, 28)  global code μ_β: (1, {dim_beta})" in text
    images = [o for cell in outputs.values() for o in cell if "image/png" in o.get("data", {})]
    assert len(images) >= 4  # samples, map, own group, its place on the map
