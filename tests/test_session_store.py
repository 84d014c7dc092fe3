"""Every Kedro session of a project gets its own save version, even in the same millisecond."""

from __future__ import annotations

import multiprocessing

from kedro.io.core import generate_timestamp

from ugvae_pipeline.session_store import UniqueVersionStore, claim_version, next_version


def test_next_version_is_one_millisecond_later_in_kedros_format():
    assert next_version("2026-11-30T15.29.00.800Z") == "2026-11-30T15.29.00.801Z"
    assert next_version("2026-12-31T23.59.59.999Z") == "2027-01-01T00.00.00.000Z"
    assert len(next_version(generate_timestamp())) == len(generate_timestamp())


def test_a_taken_or_earlier_id_becomes_the_next_free_one(tmp_path):
    assert claim_version(tmp_path, "2026-11-30T15.29.00.800Z") == "2026-11-30T15.29.00.800Z"
    assert claim_version(tmp_path, "2026-11-30T15.29.00.800Z") == "2026-11-30T15.29.00.801Z"
    assert claim_version(tmp_path, "2026-11-30T15.28.00.000Z") == "2026-11-30T15.29.00.802Z"
    assert claim_version(tmp_path, "2026-11-30T16.00.00.000Z") == "2026-11-30T16.00.00.000Z"


def _claim(args):
    project, version = args
    return claim_version(project, version)


def test_processes_claiming_the_same_id_at_once_get_distinct_ones(tmp_path):
    same = "2026-11-30T15.29.00.800Z"
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        claimed = pool.map(_claim, [(tmp_path, same)] * 8)
    assert sorted(claimed) == [f"2026-11-30T15.29.00.{800 + i}Z" for i in range(8)]


def test_the_store_keeps_its_claimed_id_when_kedro_sets_its_own(tmp_path):
    (tmp_path / ".kedro_save_version").write_text("2026-11-30T15.29.00.800Z")
    store = UniqueVersionStore(str(tmp_path / "sessions"), "2026-11-30T15.29.00.800Z")
    store.update(
        {"session_id": "2026-11-30T15.29.00.800Z", "env": "local"}
    )  # as KedroSession.create
    assert store["session_id"] == "2026-11-30T15.29.00.801Z" and store["env"] == "local"


def test_a_kedro_run_saves_under_the_claimed_version(project_copy):
    from tests.conftest import run_kedro

    # a run of this project (another process, say) has claimed a later id than this run's clock
    taken = "2099-01-01T00.00.00.000Z"
    (project_copy / ".kedro_save_version").write_text(taken)
    run_kedro(project_copy, "ingestion", {"data": {"source": "uci_digits"}})
    versions = [
        path.name for path in (project_copy / "data" / "02_intermediate" / "images.json").iterdir()
    ]
    assert versions == [next_version(taken)]
    assert (project_copy / ".kedro_save_version").read_text() == next_version(taken)
