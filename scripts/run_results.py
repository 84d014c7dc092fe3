"""The README's results table: every model, three seeds, two experiments, then `compare`.

    python scripts/run_results.py                 # make results
    python scripts/run_results.py --models ugvae,mlvae --seeds 1 --envs base

For each experiment (``base``: series groups of the embedded MNIST; ``domain_alignment``:
MNIST + UCI digits, conf/domain_alignment), model and seed it runs the whole chain

    kedro run [--env ENV] --params model.name=M,train.seed=S,mlflow_experiment=ugvae_results

with every other parameter at its default, so each row of the table is reproducible on its
own, then ``kedro run --pipeline=compare --params mlflow_experiment=ugvae_results``, which
writes the versioned table (data/08_reporting/comparison/summary.md) and figure. A run
already FINISHED in the experiment with the same environment, model and seed is not redone,
so an interrupted study continues where it stopped (``--redo`` runs everything again).
Runs go one after another: concurrent runs in one project would share "latest" versions.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

MODELS = ("ugvae", "beta_vae", "gmvae", "mlvae")
ENVS = ("base", "domain_alignment")
EXPERIMENT = "ugvae_results"


def run_config(project: Path, env: str) -> tuple[str, str]:
    """``(tracking URI, evaluation-group strategy)`` of ``kedro run`` in ``env``.

    Read through Kedro's own config loader with the project's settings, as a run sees them:
    ``base`` is run without ``--env`` (conf/local over conf/base), any other environment
    over conf/base; ``mlflow.yml`` under the pattern kedro-mlflow registers.
    """
    from kedro.config import OmegaConfigLoader

    from ugvae_pipeline.settings import CONFIG_LOADER_ARGS

    loader = OmegaConfigLoader(
        conf_source=str(project / "conf"),
        env=None if env == "base" else env,
        config_patterns={"mlflow": ["mlflow*", "mlflow*/**", "**/mlflow*"]},
        **CONFIG_LOADER_ARGS,
    )
    uri = loader["mlflow"]["server"]["mlflow_tracking_uri"]
    return uri, loader["parameters"]["groups"]["evaluation"]["strategy"]


def done_runs(uri: str) -> set[tuple[str, str, int]]:
    """``(evaluation groups, model, seed)`` of the study's runs the comparison table counts
    (``evaluation.comparison.runs_table``: finished, trained and evaluated)."""
    import mlflow

    from ugvae_pipeline.evaluation.comparison import runs_table

    mlflow.set_tracking_uri(uri)
    if mlflow.get_experiment_by_name(EXPERIMENT) is None:
        return set()
    try:
        table = runs_table(mlflow.search_runs(experiment_names=[EXPERIMENT]))
    except ValueError:  # no run the table would count yet
        return set()
    return set(zip(table["evaluation_groups"], table["model"], table["seed"]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default=",".join(MODELS), help=f"comma-separated, from {MODELS}")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--envs", default=",".join(ENVS), help=f"comma-separated, from {ENVS}")
    parser.add_argument("--redo", action="store_true", help="rerun runs already finished in the study")
    args = parser.parse_args(argv)
    models, envs = args.models.split(","), args.envs.split(",")
    for name, values, valid in (("--models", models, MODELS), ("--envs", envs, ENVS)):
        if not set(values) <= set(valid):
            parser.error(f"{name} {values}: choose from {list(valid)}")

    project = Path.cwd()
    configs = {env: run_config(project, env) for env in envs}
    done = {env: set() if args.redo else done_runs(uri) for env, (uri, _) in configs.items()}
    kedro = [sys.executable, "-m", "kedro", "run"]
    # the base study is `kedro run` without --env (conf/local over conf/base), whatever KEDRO_ENV says
    env_vars = {key: value for key, value in os.environ.items() if key != "KEDRO_ENV"}
    env_vars["KEDRO_DISABLE_TELEMETRY"] = "true"
    for env in envs:
        for model in models:
            for seed in args.seeds:
                label = f"{env} / {model} / seed {seed}"
                if (configs[env][1], model, seed) in done[env]:
                    print(f"[results] {label}: already in {EXPERIMENT}, skipped", flush=True)
                    continue
                params = f"model.name={model},train.seed={seed},mlflow_experiment={EXPERIMENT},train.progress=log,extract.progress=log"
                command = kedro + ([] if env == "base" else ["--env", env]) + ["--params", params]
                print(f"[results] {label}: {' '.join(command[1:])}", flush=True)
                start = time.perf_counter()
                subprocess.run(command, check=True, env=env_vars)
                print(f"[results] {label}: {time.perf_counter() - start:.0f} s", flush=True)
    subprocess.run(kedro + ["--pipeline", "compare", "--params", f"mlflow_experiment={EXPERIMENT}"], check=True, env=env_vars)
    print("[results] table: the latest data/08_reporting/comparison/summary.md/<version>/summary.md", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
