"""The results tables: every model, three seeds, on test groups, then `compare`.

    python experiments/run_results.py                      # make results
    python experiments/run_results.py --models ugvae,ugvae_paper --seeds 1 --envs base

For each experiment (``base``: the official digit series of the embedded MNIST;
``domain_alignment``: MNIST + UCI digits, conf/domain_alignment; ``celeba``: a smoke run of the
hair-colour experiment, conf/celeba, on a synthetic CelebA-layout folder that
experiments/celeba_fixture.py writes, UG-VAE only, first seed only), model and seed it runs the
whole chain as a user would,

    kedro run [--env ENV] --params model.name=M,train.seed=S,mlflow_experiment=ugvae_results

``ugvae`` is the project's variant (conf/base, chosen on validation groups by
experiments/select_variant.py); ``ugvae_paper`` is the paper's UG-VAE (the model and training
options of conf/official, fp32, with the official run's number of steps on the data at hand).
Every model of the ``base`` study is then scored again, without retraining, on the harder
series (``groups.series.digits=all_of_first_256_numbers``). Last, ``kedro run --pipelines=compare``
writes the versioned tables (data/08_reporting/comparison/summary.md) and figure. A run already
in the experiment is not redone, so an interrupted study continues where it stopped.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from celeba_fixture import write_fixture  # noqa: E402
from studies import kedro_run, n_train_images, paper_params, run_config, study_runs  # noqa: E402

MODELS = ("ugvae", "ugvae_paper", "beta_vae", "gmvae", "mlvae")
ENVS = ("base", "domain_alignment", "celeba")
CELEBA_SMOKE = "data/01_raw/celeba_smoke"  # 1,500 synthetic faces in CelebA's layout
SMOKE = {  # small enough for a CPU: 1,050 training faces, groups of 64
    "data.celeba.root": CELEBA_SMOKE,
    "train.epochs": 5,
    "train.group_size": 64,
    "groups.heldout.group_size": 64,
    "groups.attribute.group_size": 64,
    "groups.evaluation.random.n_groups": 50,
}
EXPERIMENT = "ugvae_results"
HARDER = {"groups.series.digits": "all_of_first_256_numbers"}


def model_params(project: Path, env: str, model: str) -> dict[str, object]:
    if model == "ugvae_paper":
        return {**paper_params(project, n_train_images(project, env)), "model.name": "ugvae"}
    return {"model.name": model}


def done_runs(uri: str) -> set[tuple[str, str, str, int]]:
    """``(evaluation groups, model, variant, seed)`` of the study's runs the table counts."""
    table = study_runs(uri, EXPERIMENT)
    if table is None:
        return set()
    return set(
        zip(table["evaluation_groups"], table["model"], table["variant"] != "paper", table["seed"])
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--models", default=",".join(MODELS), help=f"comma-separated, from {MODELS}"
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--envs", default=",".join(ENVS), help=f"comma-separated, from {ENVS}")
    parser.add_argument(
        "--redo", action="store_true", help="rerun runs already finished in the study"
    )
    args = parser.parse_args(argv)
    models, envs = args.models.split(","), args.envs.split(",")
    for name, values, valid in (("--models", models, MODELS), ("--envs", envs, ENVS)):
        if not set(values) <= set(valid):
            parser.error(f"{name} {values}: choose from {list(valid)}")

    project = Path.cwd()
    if "celeba" in envs and not (project / CELEBA_SMOKE).exists():
        write_fixture(project / CELEBA_SMOKE)
    for env in envs:
        uri, strategy = run_config(project, env)
        done = set() if args.redo else done_runs(uri)
        for model in ["ugvae"] if env == "celeba" else models:
            name = "ugvae" if model == "ugvae_paper" else model
            not_paper = model != "ugvae_paper"
            for seed in args.seeds[:1] if env == "celeba" else args.seeds:
                params = {
                    **model_params(project, env, model),
                    "train.seed": seed,
                    "mlflow_experiment": EXPERIMENT,
                    "train.progress": "log",
                    "extract.progress": "log",
                    **(SMOKE if env == "celeba" else {}),
                }
                label = f"{env} / {model} / seed {seed}"
                harder = strategy == "series"
                wanted = {(strategy, name, not_paper, seed)} | (
                    {("series(all digits)", name, not_paper, seed)} if harder else set()
                )
                if wanted <= done:
                    continue
                kedro_run(project, env, params, label)
                if harder:  # the model just trained (the latest version), scored on the harder series; ingestion
                    # (deterministic, seconds) runs too, so the run records its data parameters
                    kedro_run(
                        project,
                        env,
                        {**params, **HARDER},
                        f"{label} / harder series",
                        "ingestion,grouping,extract,evaluate",
                    )
    kedro_run(project, "base", {"mlflow_experiment": EXPERIMENT}, "compare", "compare")
    print(
        "[study] table: the latest data/08_reporting/comparison/summary.md/<version>/summary.md",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
