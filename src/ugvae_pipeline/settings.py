"""Project settings (https://docs.kedro.org/en/stable/configure/configuration_basics/)."""

import warnings

from omegaconf.resolvers import oc

from ugvae_pipeline.hooks import (
    InterruptedRunHook,
    LineageHook,
    MissingInputsHook,
    MlflowArtifactsHook,
    MlflowRunTagsHook,
    MlflowSetupLockHook,
    ResumedRunHook,
    ValidateParametersHook,
)
from ugvae_pipeline.session import ProjectSession
from ugvae_pipeline.session_store import UniqueVersionStore

# Python warnings reach the user (conf/logging.yml), except these understood ones that a user
# of this project cannot act on: Kedro and kedro-mlflow call OmegaConf's renamed resolver API,
# and MLflow's SQLAlchemy store uses a loader strategy SQLAlchemy has deprecated.
warnings.filterwarnings(
    "ignore", message=r"register_new_resolver\(\) is deprecated", category=UserWarning
)
warnings.filterwarnings("ignore", message=r"The ``noload`` loader strategy is deprecated")

# Of the checks before a run (tryfirst), the last registered runs first: the parameters are
# checked before the inputs.
HOOKS = (
    MlflowSetupLockHook(),
    MissingInputsHook(),
    ValidateParametersHook(),
    MlflowRunTagsHook(),
    LineageHook(),
    MlflowArtifactsHook(),
    InterruptedRunHook(),
    ResumedRunHook(),
)

# SIGTERM and Ctrl-C reach the on_pipeline_error hooks: the MLflow run ends KILLED (session.py).
SESSION_CLASS = ProjectSession

# Every run gets its own save version, even two started in the same millisecond.
SESSION_STORE_CLASS = UniqueVersionStore

CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # An environment (conf/local, conf/celeba) overrides single keys of a parameter group
    # instead of replacing the whole group.
    "merge_strategy": {"parameters": "soft"},
    # ${oc.env:NAME,default} in any configuration file: conf/base/mlflow.yml reads the tracking
    # URI from MLFLOW_TRACKING_URI (a team's tracking server) and falls back to the project's SQLite
    "custom_resolvers": {"oc.env": oc.env},
}
