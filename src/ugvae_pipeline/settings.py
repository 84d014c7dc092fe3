"""Project settings (https://docs.kedro.org/en/stable/configure/configuration_basics/)."""

from ugvae_pipeline.hooks import (
    InterruptedRunHook,
    MlflowArtifactsHook,
    MlflowRunTagsHook,
    MlflowSetupLockHook,
    ValidateParametersHook,
)
from ugvae_pipeline.session_store import UniqueVersionStore

HOOKS = (
    MlflowSetupLockHook(),
    ValidateParametersHook(),
    MlflowRunTagsHook(),
    MlflowArtifactsHook(),
    InterruptedRunHook(),
)

# Every run gets its own save version, even two started in the same millisecond.
SESSION_STORE_CLASS = UniqueVersionStore

CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # An environment (conf/local, conf/celeba) overrides single keys of a parameter group
    # instead of replacing the whole group.
    "merge_strategy": {"parameters": "soft"},
}
