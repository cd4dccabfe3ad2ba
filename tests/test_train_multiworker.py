"""Multi-worker training: two TensorFlow worker processes on loopback (TF_CONFIG +
MultiWorkerMirroredStrategy), each reading its own shard of the same store."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests._train_helpers import learnable_store

pytest.importorskip("tensorflow")
ROOT = Path(__file__).resolve().parents[1]


def _tiny_config(tmp_path: Path, n_loci: int, schedule: str) -> Path:
    """train.yaml for a tiny model on a learnable store of `n_loci`, plus `schedule` lines."""
    store = learnable_store(str(tmp_path / "store.zarr"), n_loci=n_loci)
    cfg = tmp_path / "train.yaml"
    cfg.write_text(f"store: {store}\noutput: {tmp_path / 'out'}\n"
                   "model: {conv_filters: [8, 8], filters: 8, n_dilated: 2}\n"
                   "batch_size: 32\ntensorboard: false\n" + schedule)
    return cfg


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_two_workers_train_from_sharded_readers(tmp_path):
    from clipstore.testing import free_port

    cfg = _tiny_config(tmp_path, 320, "steps_per_epoch: 4\nmax_epochs: 2\n"
                                      "loss: multiscale\nloss_lambda: 0.05\n")
    ports = [free_port(), free_port()]
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    procs = []
    logs = []
    for i in range(2):
        env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2",
               "CUDA_VISIBLE_DEVICES": "",
               "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker",
                                                                     "index": i}})}
        log = open(tmp_path / f"worker{i}.log", "wb")
        logs.append(log)
        procs.append(subprocess.Popen([sys.executable, "-m", "trainer.task", "--config", str(cfg)],
                                      cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT))
    deadline = time.monotonic() + 200
    try:
        for p in procs:
            p.wait(max(1.0, deadline - time.monotonic()))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        for log in logs:
            log.close()
    outs = [(tmp_path / f"worker{i}.log").read_text() for i in range(2)]
    assert [p.returncode for p in procs] == [0, 0], "\n\n".join(o[-3000:] for o in outs)
    manifest = json.loads((tmp_path / "out/manifest.json").read_text())
    assert manifest["model"]["workers"] == 2
    assert manifest["metrics"]["epochs"] == 2
    shards = manifest["selection"]["shards"]
    # each worker read a different, non-empty part of the store
    assert len(shards) == 2 and all(s["train_batches"] > 0 for s in shards)
    state = json.loads((tmp_path / "out/checkpoint/state.json").read_text())
    assert len(state["history"]["loss"]) == 2
    assert all(v == v for v in state["history"]["loss"])   # finite, not NaN
    # only the chief wrote the run folder; the other worker used a scratch folder
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "checkpoint", "log.csv", "manifest.json", "model.keras"]


MIRRORED = """
import json, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import trainer.distribute as D
import trainer.train as T
D._STRATEGY = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])   # what 2 GPUs would get
from trainer.config import load_train_config
r = T.train(load_train_config(sys.argv[1]))
print(json.dumps({"epochs": r.epochs_run, "loss": r.history["loss"],
                  "replicas": D._STRATEGY.num_replicas_in_sync}))
"""


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_mirrored_strategy_over_two_devices(tmp_path):
    """The MirroredStrategy path (several GPUs), run on two logical CPU devices."""
    cfg = _tiny_config(tmp_path, 160, "steps_per_epoch: 3\nvalidation_steps: 1\nmax_epochs: 2\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    out = subprocess.run([sys.executable, "-c", MIRRORED, str(cfg)], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=170)
    assert out.returncode == 0, out.stderr[-3000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["replicas"] == 2 and res["epochs"] == 2
    assert all(np.isfinite(res["loss"]))
    assert (tmp_path / "out/model.keras").exists()
