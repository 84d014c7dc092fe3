"""Concurrent Kedro sessions of one project: each gets its own save version, even in the same
millisecond, and they set the MLflow store up one at a time."""

from __future__ import annotations

import multiprocessing
import queue
import time

from kedro.io.core import generate_timestamp
from mlflow import MlflowClient

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


def _claim_slowly(project, version, barrier, claimed) -> None:
    """In a process of its own: wait for the others, then claim ``version`` with the step from
    reading the last claim to writing the next one widened to half a second."""
    from ugvae_pipeline import session_store

    next_version = session_store.next_version

    def slow_next_version(last):  # the same result, half a second later
        time.sleep(0.5)
        return next_version(last)

    session_store.next_version = slow_next_version  # in this child process only
    barrier.wait()
    claimed.put(claim_version(project, version))


def _in_processes(target, n: int, *args) -> list:
    """``target(*args, barrier, results)`` in ``n`` processes started together; their results."""
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(n), context.Queue()
    processes = [context.Process(target=target, args=(*args, barrier, results)) for _ in range(n)]
    for process in processes:
        process.start()
    got, deadline = [], time.monotonic() + 300
    try:
        while len(got) < n:
            try:
                got.append(results.get(timeout=1))
            except queue.Empty:
                failed = [p.exitcode for p in processes if p.exitcode not in (None, 0)]
                assert not failed, f"a process failed (exit codes {failed}); see its stderr"
                assert time.monotonic() < deadline, f"{n - len(got)} process(es) did not report"
    finally:
        for process in processes:
            process.join(timeout=60)
            if process.is_alive():  # one that waits at the barrier for a failed one
                process.terminate()
                process.join()
    assert [process.exitcode for process in processes] == [0] * n
    return got


def test_processes_claiming_the_same_id_at_once_get_distinct_ones(tmp_path):
    # every process reads the same last claim, then takes half a second to write the next one:
    # only the lock keeps two from writing the same id (without it all four would)
    taken = "2026-11-30T15.29.00.800Z"
    (tmp_path / ".kedro_save_version").write_text(taken)
    claimed = _in_processes(_claim_slowly, 4, tmp_path, taken)
    assert sorted(claimed) == [f"2026-11-30T15.29.00.{801 + i}Z" for i in range(4)]
    assert (tmp_path / ".kedro_save_version").read_text() == max(claimed)


def _set_up_mlflow(project, barrier, spans) -> None:
    """In a process of its own: create the project's Kedro context (kedro-mlflow sets the
    MLflow store up then) when the other processes do; report when the set-up ran. The set-up
    takes a second longer than it would, so that set-ups not kept apart would overlap."""
    import functools

    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project
    from kedro_mlflow.framework.hooks.mlflow_hook import MlflowHook

    set_up = MlflowHook.after_context_created

    @functools.wraps(set_up)  # keeps Kedro's hook marker
    def slow_set_up(self, context):
        start = time.monotonic()  # one clock for every process of the machine
        time.sleep(1.0)
        try:
            return set_up(self, context)
        finally:
            spans.put((start, time.monotonic()))

    MlflowHook.after_context_created = slow_set_up  # in this child process only
    bootstrap_project(project)
    with KedroSession.create(project_path=project) as session:
        barrier.wait()
        session.load_context()


def test_kedro_sessions_started_together_set_the_mlflow_store_up_one_at_a_time(project_copy):
    # three sessions of a project without mlflow.db create their contexts at once: each one's
    # kedro-mlflow set-up (create and migrate the store, the experiment) runs alone
    spans = sorted(_in_processes(_set_up_mlflow, 3, project_copy))
    for (_, end), (next_start, _) in zip(spans, spans[1:]):
        assert end <= next_start, spans  # no two set-ups overlapped
    client = MlflowClient(f"sqlite:///{project_copy / 'mlflow.db'}")
    assert [e.name for e in client.search_experiments()].count("ugvae_pipeline") == 1


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
