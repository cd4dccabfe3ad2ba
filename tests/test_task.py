"""`python -m trainer.task`: the cloud-job entry point, writing its run folder to a bucket
(a real moto S3 server on loopback) and resuming from it; exit codes; no leaked credentials."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests._train_helpers import learnable_store

pytest.importorskip("tensorflow")
ROOT = Path(__file__).resolve().parents[1]

YAML = """store: {store}
output: {output}
model: {{conv_filters: [8, 8], filters: 8, n_dilated: 2}}
batch_size: 32
steps_per_epoch: 3
validation_steps: 1
max_epochs: {epochs}
tensorboard: true
"""


def test_task_trains_into_a_bucket_and_resumes_from_it(tmp_path, capsys):
    import s3fs

    from clipstore.testing import moto_server
    from trainer import task
    from trainer.predict import load_predictor

    store = learnable_store(str(tmp_path / "store.zarr"), n_loci=160)
    with moto_server() as (endpoint, so):
        fs = s3fs.S3FileSystem(**so)
        fs.mkdir("models")
        cfg = tmp_path / "train.yaml"
        cfg.write_text(YAML.format(store=store, output="s3://models/exp/rep1", epochs=2))
        argv = ["--config", str(cfg), "--storage-options", json.dumps(so)]
        assert task.main(argv) == 0
        first = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert first["model"] == "s3://models/exp/rep1/model.keras" and first["epochs"] == 2
        files = {p.split("models/exp/rep1/", 1)[1] for p in fs.find("models/exp/rep1")}
        assert {"model.keras", "manifest.json", "log.csv", "checkpoint/last.keras",
                "checkpoint/state.json"} <= files
        assert any(f.startswith("tensorboard/") for f in files)
        manifest = fs.cat("models/exp/rep1/manifest.json").decode()
        assert os.environ["AWS_SECRET_ACCESS_KEY"] not in manifest
        assert endpoint not in manifest            # storage options never saved
        # a fresh machine (new local staging folder) resumes from the bucket
        assert task.main(argv + ["--set", "max_epochs=3"]) == 0
        again = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert again["resumed_from"] == 2 and again["epochs"] == 3
        state = json.loads(fs.cat("models/exp/rep1/checkpoint/state.json"))
        assert len(state["history"]["loss"]) == 3
        pred = load_predictor("s3://models/exp/rep1", storage_options=so)
        assert pred.input_length == 100 and pred.output_length == 50


def test_task_exit_codes(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    bad = tmp_path / "bad.yaml"
    bad.write_text("store: s.zarr\noutput: m\nlearning_rat: 0.1\n")
    out = subprocess.run([sys.executable, "-m", "trainer.task", "--config", str(bad)],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "unknown option(s) ['learning_rat']" in out.stderr
    out = subprocess.run([sys.executable, "-m", "trainer.task", "--help"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "--config" in out.stdout


def test_train_cli_with_overrides(tmp_path):
    from click.testing import CliRunner

    from clipstore.cli import cli

    store = learnable_store(str(tmp_path / "store.zarr"), n_loci=160)
    cfg = tmp_path / "train.yaml"
    cfg.write_text(YAML.format(store=store, output="out", epochs=5))
    r = CliRunner().invoke(cli, ["-q", "train", str(cfg), "--set", "max_epochs=1",
                                 "--set", "ensemble=[2, 3]", "--set", "tensorboard=false"])
    assert r.exit_code == 0, r.output
    lines = [json.loads(ln) for ln in r.output.strip().splitlines()]
    assert [ln["model"] for ln in lines] == [str(tmp_path / f"out/rep{k}/model.keras")
                                             for k in (2, 3)]
    from trainer.train import experiment_models

    assert experiment_models(str(tmp_path / "out")) == [ln["model"] for ln in lines]
    from trainer.predict import load_predictor

    assert len(load_predictor(str(tmp_path / "out")).models) == 2   # the whole ensemble
    m = json.loads((tmp_path / "out/rep3/manifest.json").read_text())
    assert m["selection"]["replicate"] == 3 and m["config"]["max_epochs"] == 1
