"""Builds on an existing dask.distributed cluster: a real `dask scheduler` and two `dask worker`
processes on loopback (clipstore.testing.dask_cluster), driven by `clipstore build --scheduler`.
The store must equal a local in-process build bit for bit, also when a worker or the driver is
killed mid-build (dask reschedules a lost worker's shards; a killed driver resumes on rerun)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import zarr

from clipstore import schema
from clipstore.build import PROGRESS_KEY
from clipstore.testing import dask_cluster
from tests._build_inputs import assert_same_store, build_process, shards_done, wait_for

ROOT = Path(__file__).resolve().parents[1]



def build_cmd(config: Path, out: str, address: str) -> list[str]:
    return [sys.executable, "-m", "clipstore", "-q", "build", str(config), "-o", out,
            "--scheduler", address]


def test_cli_build_on_an_existing_cluster_equals_a_local_build(cohort, built, tmp_path):
    out = str(tmp_path / "cluster.zarr")
    with dask_cluster(2) as address:
        r = subprocess.run(build_cmd(cohort["config"], out, address), cwd=ROOT,
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr[-3000:]
        from distributed import Client
        with Client(address) as c:      # the shards really ran on the cluster's two workers
            ran = c.run(lambda dask_worker: dask_worker.state.executed_count)
    assert len(ran) == 2
    assert sum(ran.values()) == built[1].n_shards and min(ran.values()) >= 1, ran
    assert_same_store(built[0], out)


def test_killing_a_worker_mid_build_still_gives_the_identical_store(cohort, built, tmp_path):
    out = str(tmp_path / "killed_worker.zarr")
    n = built[1].n_shards
    with dask_cluster(2) as address:      # each shard takes >= 0.4 s: kills land mid-build
        p = subprocess.Popen(build_process(cohort["config"], out, scheduler=address, delay=0.4),
                             cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            wait_for(lambda: shards_done(out) >= 2, 120, "two shards")
            address.kill_worker(0)
            killed_at = shards_done(out)
            out_text, err = p.communicate(timeout=300)
        finally:
            if p.poll() is None:
                p.kill()
        assert killed_at < n                       # the kill really landed mid-build
        assert address.worker_procs[0].returncode == -signal.SIGKILL
        assert address.worker_procs[1].poll() is None
        assert p.returncode == 0, err[-3000:]      # dask rescheduled the lost worker's shards
    assert_same_store(built[0], out)


def test_killed_driver_on_a_cluster_resumes_to_the_identical_store(cohort, built, tmp_path):
    out = str(tmp_path / "killed_driver.zarr")
    n = built[1].n_shards
    with dask_cluster(2) as address:      # each shard takes >= 0.4 s: kills land mid-build
        p = subprocess.Popen(build_process(cohort["config"], out, scheduler=address, delay=0.4),
                             cwd=ROOT,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: shards_done(out) >= 2, 120, "two shards")
        p.send_signal(signal.SIGKILL)
        p.wait()
        done_at_kill = (zarr.open_group(out, mode="r").attrs[PROGRESS_KEY])["done"]
        assert 2 <= len(done_at_kill) < n
        assert not schema.store_info(zarr.open_group(out, mode="r")).complete
        rows = Path(out, schema.SEQUENCE_DELTA, "c")  # c/<individual>/<locus shard>/...
        files = {f: f.stat().st_mtime_ns for f in rows.rglob("*")
                 if f.is_file() and f.relative_to(rows).parts[1] in done_at_kill}
        assert {f.relative_to(rows).parts[1] for f in files} == set(done_at_kill)
        r = subprocess.run(build_cmd(cohort["config"], out, address), cwd=ROOT,
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr[-3000:]
    assert_same_store(built[0], out)
    # the rerun rewrote none of the shards recorded done before the kill
    assert {f: f.stat().st_mtime_ns for f in files} == files


def test_unreachable_scheduler_fails_with_a_clear_message(cohort, tmp_path):
    from clipstore.testing import free_port
    out = str(tmp_path / "nowhere.zarr")
    r = subprocess.run(build_cmd(cohort["config"], out, f"tcp://127.0.0.1:{free_port()}"),
                       cwd=ROOT, capture_output=True, text=True, timeout=300,
                       env={**os.environ, "DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "3s"})
    assert r.returncode != 0
    assert "scheduler" in r.stderr.lower() or "connect" in r.stderr.lower(), r.stderr[-2000:]
