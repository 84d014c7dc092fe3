"""The benchmark's smoke run writes a full table of positive timings."""

import math

import pandas as pd
import pytest
import torch

from benchmarks import benchmark


def test_quick_run_writes_the_table(tmp_path, capsys):
    output = tmp_path / "bench" / "table.csv"
    threads = torch.get_num_threads()
    other = 1 if threads > 1 else 2  # a thread count that differs from the caller's
    argv = ["--quick", "--device", "cpu", "--threads", str(other), "--output", str(output)]
    assert benchmark.main(argv) == 0
    assert torch.get_num_threads() == threads  # --threads is the benchmark's, not the caller's
    table = pd.read_csv(output)
    assert (table["threads"] == other).all()
    assert list(table.columns) == benchmark.COLUMNS
    assert not table["compiled"].any()  # eager unless --compile
    assert table["kernel_time_fraction"].isna().all()  # measured on CUDA only
    # 2 architectures x 2 groups-per-step values x 3 models
    assert len(table) == 12
    assert set(table["model"]) == {"ugvae", "plain_vae", "anchor"}
    assert sorted(set(table["groups_per_step"])) == [1, 2]
    for column in (
        "step_ms_median",
        "images_per_second",
        "time_vs_floor",
        "speedup_vs_anchor",
        "state_memory_mb",
    ):
        assert (table[column] > 0).all(), column
    assert (table["peak_memory_mb"].dropna() >= 0).all()
    floor = table[table["model"] == "plain_vae"]
    assert all(math.isclose(v, 1.0) for v in floor["time_vs_floor"])
    row = table.iloc[0]
    assert math.isclose(
        row["images_per_second"], row["images_per_step"] / row["step_ms_median"] * 1e3
    )
    assert "table written to" in capsys.readouterr().out

    with pytest.raises(FileExistsError):  # a table is never overwritten
        benchmark.main(
            ["--quick", "--device", "cpu", "--architectures", "mlp28", "--output", str(output)]
        )


def test_default_output_is_a_new_timestamped_file():
    first, second = benchmark.default_output(), benchmark.default_output()
    assert first.parent == benchmark.DEFAULT_DIR and first.suffix == ".csv"
    assert first != second


def test_compile_runs_the_vectorised_models_compiled(tmp_path):
    """--compile times ugvae and the floor through torch.compile; the anchor stays eager."""
    from torch._dynamo.utils import counters

    counters.clear()
    output = tmp_path / "compiled.csv"
    argv = [
        "--quick",
        "--device",
        "cpu",
        "--threads",
        "1",
        "--architectures",
        "mlp28",
        "--compile",
        "--output",
        str(output),
    ]
    assert benchmark.main(argv) == 0
    table = pd.read_csv(output)
    compiled = table.groupby("model")["compiled"].agg(["all", "any"])
    assert compiled.loc["ugvae", "all"] and compiled.loc["plain_vae", "all"]
    assert not compiled.loc["anchor", "any"]
    assert counters["stats"]["unique_graphs"] >= 2  # one graph per compiled model at least
    assert (table["step_ms_median"] > 0).all()
    assert (table.loc[table["model"] == "plain_vae", "time_vs_floor"] == 1.0).all()
