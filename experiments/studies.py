"""What the studies of this folder share: `kedro run` as a user types it, and the runs it tracked.

Every study runs the project's own pipelines through the `kedro` command line, one run after
another (concurrent runs in one project would share "latest" versions), and reads the results
back from the MLflow tracking store with the comparison table of the `compare` pipeline.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from pathlib import Path

PAPER_STEPS = 3750  # the official MNIST run: 8 epochs of 60,000 digits in groups of 128


def config_loader(project: Path, env: str):
    """Kedro's config loader with the project's settings, as `kedro run [--env ENV]` sees it:
    ``base`` is a run without ``--env`` (conf/local over conf/base)."""
    from kedro.config import OmegaConfigLoader

    from ugvae_pipeline.settings import CONFIG_LOADER_ARGS

    return OmegaConfigLoader(
        conf_source=str(project / "conf"),
        env=None if env == "base" else env,
        config_patterns={"mlflow": ["mlflow*", "mlflow*/**", "**/mlflow*"]},
        **CONFIG_LOADER_ARGS,
    )


def run_config(project: Path, env: str) -> tuple[str, str]:
    """``(tracking URI, evaluation-group strategy)`` of ``kedro run`` in ``env``, the strategy
    as the run resolves it for its data source (``auto``: series for digits, ...)."""
    from ugvae_pipeline.data.grouping.strategies import evaluation_strategy

    loader = config_loader(project, env)
    parameters = loader["parameters"]
    strategy = evaluation_strategy(parameters["groups"], parameters["data"])
    return loader["mlflow"]["server"]["mlflow_tracking_uri"], strategy


def flat_params(block: dict, prefix: str) -> dict[str, object]:
    """``{"model.dim_z": 10, ...}`` for a nested parameter block."""
    out: dict[str, object] = {}
    for key, value in block.items():
        name = f"{prefix}.{key}"
        out.update(flat_params(value, name) if isinstance(value, dict) else {name: value})
    return out


def paper_params(project: Path, n_train_images: int, group_size: int = 128) -> dict[str, object]:
    """The paper's UG-VAE as `--env official` defines it (model options, fp32), with the epochs
    that give the official run's number of optimisation steps on ``n_train_images``."""
    parameters = config_loader(project, "official")["parameters"]
    params = {
        **flat_params(parameters["model"], "model"),
        **flat_params(parameters["train"], "train"),
    }
    params["train.epochs"] = math.ceil(PAPER_STEPS / (n_train_images // group_size))
    return params


def n_train_images(project: Path, env: str) -> int:
    """Training images of the source ``kedro run [--env ENV]`` ingests (read, not trained on)."""
    from ugvae_pipeline.data.sources import load_source

    _, metadata = load_source(config_loader(project, env)["parameters"]["data"])
    return int((metadata["split"] == "train").sum())


def params_argument(params: dict[str, object]) -> str:
    """``--params`` text: ``key=value`` joined by commas (lists are not allowed there)."""
    for key, value in params.items():
        if isinstance(value, (list, tuple, dict)):
            raise ValueError(
                f"{key}: a list or mapping does not fit in --params; use an environment"
            )
    return ",".join(f"{key}={'null' if value is None else value}" for key, value in params.items())


def kedro_run(
    project: Path, env: str, params: dict[str, object], label: str, pipelines: str | None = None
) -> None:
    """One ``kedro run [--env ENV] [--pipelines P] --params ...`` in ``project``, logged with its time."""
    command = [sys.executable, "-m", "kedro", "run"] + ([] if env == "base" else ["--env", env])
    command += (["--pipelines", pipelines] if pipelines else []) + [
        "--params",
        params_argument(params),
    ]
    # the base study is `kedro run` without --env, whatever KEDRO_ENV says
    env_vars = {key: value for key, value in os.environ.items() if key != "KEDRO_ENV"}
    env_vars["KEDRO_DISABLE_TELEMETRY"] = "true"
    print(f"[study] {label}: {' '.join(command[2:])}", flush=True)
    start = time.perf_counter()
    subprocess.run(command, check=True, env=env_vars, cwd=project)
    print(f"[study] {label}: {time.perf_counter() - start:.0f} s", flush=True)


def study_runs(uri: str, experiment: str):
    """The comparison table's runs of ``experiment`` (finished and evaluated), or None."""
    import mlflow

    from ugvae_pipeline.evaluation.comparison import runs_table

    mlflow.set_tracking_uri(uri)
    if mlflow.get_experiment_by_name(experiment) is None:
        return None
    try:
        return runs_table(mlflow.search_runs(experiment_names=[experiment]))
    except ValueError:  # no run the table would count yet
        return None


def spread(values, digits: int = 3) -> str:
    """``mean ± sample std`` of a column of seeds' values (``–`` when none)."""
    values = values.dropna().astype(float)
    if values.empty:
        return "–"
    return f"{values.mean():.{digits}f} ± {values.std(ddof=1) if len(values) > 1 else 0:.{digits}f}"


def study_parser(doc: str):
    """The command line of a study that runs seeds, then prints its tables (``--summary``:
    only the tables, from the runs already tracked)."""
    import argparse

    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--summary", action="store_true", help="only print the tables")
    return parser
