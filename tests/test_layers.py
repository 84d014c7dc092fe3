"""Imports point one way: pipelines -> core. The core (models, data, training, evaluation and
the helpers they use) imports nothing of Kedro and nothing of ``ugvae_pipeline.pipelines``."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "ugvae_pipeline"
CORE = (
    "models",
    "data",
    "training",
    "evaluation",
    "plotting.py",
    "html_report.py",
    "progress.py",
    "validation.py",
)
FORBIDDEN = ("kedro", "kedro_datasets", "kedro_mlflow", "kedro_viz", "ugvae_pipeline.pipelines")


def core_files() -> list[Path]:
    files = []
    for entry in CORE:
        path = PACKAGE / entry
        files += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return files


def imported_names(path: Path) -> set[str]:
    """Every module a file imports, at the top or inside a function."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_no_core_file_imports_kedro_or_the_pipelines():
    files = core_files()
    assert len(files) > 30  # the check looks at the whole core
    offenders = {
        str(path.relative_to(PACKAGE)): sorted(
            n
            for n in imported_names(path)
            if n.split(".")[0] in FORBIDDEN or n.startswith(FORBIDDEN)
        )
        for path in files
    }
    assert {path: names for path, names in offenders.items() if names} == {}


def test_the_check_would_catch_a_lazy_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text(
        "def f():\n    from kedro.framework.session import KedroSession\n    import ugvae_pipeline.pipelines.training.nodes\n"
    )
    assert imported_names(bad) == {
        "kedro.framework.session",
        "ugvae_pipeline.pipelines.training.nodes",
    }


def test_importing_the_whole_core_loads_no_kedro_module():
    modules = [
        "ugvae_pipeline."
        + str(path.relative_to(PACKAGE).with_suffix("")).replace("/", ".").removesuffix(".__init__")
        for path in core_files()
    ]
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r} or m.startswith('ugvae_pipeline.pipelines')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
