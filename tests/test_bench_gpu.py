"""bench/gpu.py in the suite: the CPU smoke run (tiny model, tiny store) trains from the store
and from batches in device memory, reports every figure, and writes nothing to bench/results
(figures are recorded only when an accelerator measured them)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_bench_smoke_runs_and_records_nothing(tmp_path, capsys):
    pytest.importorskip("tensorflow")
    sys.path.insert(0, str(ROOT))
    from bench import gpu
    from bench.common import RESULTS

    target = RESULTS / "gpu.json"
    before = target.stat().st_mtime_ns if target.exists() else None
    fig = gpu.main(["--smoke", "--steps", "3", "--warmup", "1", "--resident", "2",
                    "--work", str(tmp_path)])
    for k in ("device", "store_examples_per_s", "in_memory_examples_per_s",
              "store_over_in_memory", "input_wait_fraction", "host_cores_used"):
        assert k in fig, k
    assert fig["store_examples_per_s"] > 0 and fig["in_memory_examples_per_s"] > 0
    assert fig["store_over_in_memory"] == pytest.approx(
        fig["store_examples_per_s"] / fig["in_memory_examples_per_s"])
    assert 0 <= fig["input_wait_fraction"] <= 1 and fig["host_cores_used"] > 0
    assert fig["final_loss"] == fig["final_loss"]          # a number, not NaN
    assert (target.stat().st_mtime_ns if target.exists() else None) == before
    assert "NOT written" in capsys.readouterr().out
    import keras

    assert keras.mixed_precision.global_policy().name == "float32"
