"""Training: CPU smoke runs of a tiny model on a small learnable store; resume after a stop and
after a kill; early stopping; fine-tuning warm-up; subsampling grids; manifests."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from clipstore.errors import InputError
from tests._train_helpers import learnable_store, tiny_config

pytest.importorskip("tensorflow")

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def lstore(tmp_path_factory) -> str:
    return learnable_store(str(tmp_path_factory.mktemp("lstore") / "store.zarr"))


@pytest.fixture(scope="module")
def trained(lstore, tmp_path_factory):
    """A 4-epoch run (shared by several tests)."""
    from trainer.train import train

    out = tmp_path_factory.mktemp("run") / "m"
    return train(tiny_config(lstore, str(out), max_epochs=4, learning_rate=1e-2))


def test_smoke_loss_falls_and_files_written(trained):
    h = trained.history
    assert len(h["loss"]) == 4 and trained.epochs_run == 4
    assert h["val_profile_loss"][-1] < h["val_profile_loss"][0]
    assert h["loss"][-1] < h["loss"][0]
    run = Path(trained.run_dir)
    for f in ("model.keras", "manifest.json", "log.csv", "checkpoint/last.keras",
              "checkpoint/state.json"):
        assert (run / f).exists(), f
    lines = (run / "log.csv").read_text().splitlines()
    assert lines[0].startswith("epoch") and len(lines) == 5   # header + one row per epoch


def test_manifest_records_store_selection_config_code_metrics(trained, lstore):
    m = json.loads(Path(trained.manifest_path).read_text())
    assert m["store"] == lstore
    assert m["selection"]["replicate"] == 1 and m["selection"]["n_libraries"] == 5
    assert m["selection"]["train_loci"] > 0 and m["selection"]["validation_loci"] > 0
    assert m["config"]["max_epochs"] == 4 and "storage_options" not in m["config"]
    assert m["code_version"]["clipstore"] and m["code_version"]["tensorflow"]
    assert m["metrics"]["epochs"] == 4
    assert m["metrics"]["best_val_loss"] == pytest.approx(min(trained.history["val_loss"]))
    assert m["model"]["input_length"] == 100 and m["model"]["output_length"] == 50


def test_finished_run_is_returned_not_retrained(trained, lstore):
    from trainer.train import train

    out = str(Path(trained.run_dir))
    before = os.path.getmtime(Path(out) / "checkpoint/last.keras")
    again = train(tiny_config(lstore, out, max_epochs=4, learning_rate=1e-2))
    assert again.resumed_from is None and again.history == trained.history
    assert os.path.getmtime(Path(out) / "checkpoint/last.keras") == before


def test_stopped_run_resumes_at_next_epoch(lstore, tmp_path):
    import keras

    from trainer.train import train

    out = str(tmp_path / "m")
    first = train(tiny_config(lstore, out, max_epochs=2))
    assert first.epochs_run == 2
    second = train(tiny_config(lstore, out, max_epochs=4))   # same run, longer schedule
    assert second.resumed_from == 2 and len(second.history["loss"]) == 4
    assert second.history["loss"][:2] == first.history["loss"]
    ckpt = keras.saving.load_model(str(tmp_path / "m/checkpoint/last.keras"), safe_mode=True)
    assert int(ckpt.optimizer.iterations.numpy()) == 4 * 6        # optimizer state carried on
    # an uninterrupted run sees the same data order: same first epochs, close afterwards
    ref = train(tiny_config(lstore, str(tmp_path / "ref"), max_epochs=4))
    assert ref.history["loss"][:2] == first.history["loss"]
    np.testing.assert_allclose(ref.history["loss"], second.history["loss"], rtol=2e-2)


def _weights(path):
    import keras

    return keras.saving.load_model(str(path), safe_mode=True, compile=False).get_weights()


def test_killed_run_resumes_with_the_same_command_bit_for_bit(lstore, tmp_path):
    """SIGKILL a `deterministic` training process after its first checkpoint; the same command
    continues, and the result equals an uninterrupted run's bit for bit (dropout on: the tiny
    model keeps CLIPNET's 0.3, whose masks come from generators the checkpoint must carry)."""
    cfg = tmp_path / "train.yaml"
    cfg.write_text(f"store: {lstore}\nmodel: {{conv_filters: [8, 8], filters: 8, "
                   "n_dilated: 2}\nbatch_size: 32\nsteps_per_epoch: 12\nvalidation_steps: 2\n"
                   "max_epochs: 5\ntensorboard: false\ndeterministic: true\n")
    cmd = [sys.executable, "-m", "trainer.task", "--config", str(cfg)]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    ref = subprocess.Popen(cmd + ["--output", str(tmp_path / "ref")], cwd=ROOT, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    state = tmp_path / "m/checkpoint/state.json"
    proc = subprocess.Popen(cmd + ["--output", str(tmp_path / "m")], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 180
        while not state.exists():
            assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
            assert time.monotonic() < deadline, "no checkpoint within 180 s"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    done = json.loads(state.read_text())["epoch"]
    assert done < 4, "the run finished before it could be killed"
    out = subprocess.run(cmd + ["--output", str(tmp_path / "m")], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    line = json.loads(out.stdout.strip().splitlines()[-1])
    assert line["resumed_from"] == done + 1 and line["epochs"] == 5
    final = json.loads(state.read_text())
    assert final["finished"] and len(final["history"]["loss"]) == 5
    rows = (tmp_path / "m/log.csv").read_text().splitlines()[1:]
    assert [int(r.split(",")[0]) for r in rows][-(5 - done - 1):] == list(range(done + 1, 5))
    _, r_err = ref.communicate(timeout=300)
    assert ref.returncode == 0, r_err[-3000:]
    uninterrupted = json.loads((tmp_path / "ref/checkpoint/state.json").read_text())
    assert final["history"] == uninterrupted["history"]          # every loss, bit for bit
    assert final["best"] == uninterrupted["best"] and final["rng"] == uninterrupted["rng"]
    for name in ("checkpoint/last.keras", "model.keras"):
        for a, b in zip(_weights(tmp_path / "m" / name), _weights(tmp_path / "ref" / name)):
            assert np.array_equal(a, b), name


def test_early_stopping_and_different_config_refused(lstore, tmp_path):
    from trainer.train import train

    # lr 0: validation loss never improves after epoch 0 -> stop after `patience` epochs
    r = train(tiny_config(lstore, str(tmp_path / "m"), max_epochs=10, patience=2,
                          learning_rate=0.0, steps_per_epoch=2))
    assert r.stopped_early and r.epochs_run == 3 and r.best_epoch == 0
    with pytest.raises(InputError, match="different configuration"):
        train(tiny_config(lstore, str(tmp_path / "m"), max_epochs=10, patience=2,
                          learning_rate=0.0, steps_per_epoch=2, seed=5))


def test_fine_tune_warmup_then_usual_lr_on_reference_only_store(trained, tmp_path):
    from trainer.train import train

    ref = learnable_store(str(tmp_path / "k562.zarr"), reference_only=True, n_loci=200)
    r = train(tiny_config(ref, str(tmp_path / "ft"), fine_tune_from=trained.model_path,
                          max_epochs=2, learning_rate=1e-3, warmup_lr=1e-4))
    assert r.history["learning_rate"] == [1e-4, 1e-3]
    m = json.loads(Path(r.manifest_path).read_text())
    assert m["config"]["fine_tune_from"] == trained.model_path


def test_masked_run_and_subsample_grid(lstore, tmp_path):
    from trainer.train import expand, experiment_models, train_all

    cfg = tiny_config(lstore, str(tmp_path / "grid"), subsample={"n": 2, "draws": 2, "seed": 1},
                      masked=True, max_epochs=1, steps_per_epoch=2, validation_steps=1)
    runs = expand(cfg)
    assert [rel for rel, _ in runs] == ["n2/draw0", "n2/draw1"]
    results = train_all(cfg)
    sels = [json.loads(Path(r.manifest_path).read_text())["selection"] for r in results]
    assert all(s["masked"] and s["n_libraries"] == 2 for s in sels)
    assert sels[0]["libraries"] != sels[1]["libraries"]
    assert experiment_models(cfg.output, subsample={"n": 2, "draw": 1}) == [results[1].model_path]
    for s in sels:   # never two isogenic replicates: distinct individuals (lib..._indNNN)
        inds = [lib.split("_", 1)[1] for lib in s["libraries"]]
        assert len(set(inds)) == len(inds)


def test_single_run_api_refuses_multi_model_configs(lstore, tmp_path):
    from trainer.train import train

    with pytest.raises(InputError, match="several models"):
        train(tiny_config(lstore, str(tmp_path / "e"), ensemble="all"))


def test_no_validation_loci_is_a_clear_error(tmp_path):
    from trainer.train import train

    url = learnable_store(str(tmp_path / "s.zarr"), n_loci=20)   # few chromosomes -> empty folds
    import zarr

    folds = zarr.open_group(url, mode="r")["fold"][:]
    missing = [k for k in range(1, 10) if k not in set(folds.tolist())]
    if not missing:
        pytest.skip("every fold has loci in this draw")
    with pytest.raises(InputError, match="clipstore folds"):
        train(tiny_config(url, str(tmp_path / "m"), replicate=missing[0]))


def test_trains_on_the_simulated_store_and_predicts_it(store, tmp_path):
    """The session's simulated cohort (real file formats -> build -> store), cropped to 200 bp:
    the full path runs; whether it learns is checked on `lstore` (too few steps here)."""
    from trainer.predict import load_predictor, predict_store
    from trainer.train import train

    r = train(tiny_config(store, str(tmp_path / "m"), input_length=200, output_length=100,
                          batch_size=64, steps_per_epoch=8, validation_steps=2, max_epochs=3,
                          learning_rate=1e-2))
    h = r.history
    assert len(h["loss"]) == 3 and all(np.isfinite(h["loss"] + h["val_loss"]))
    m = json.loads(Path(r.manifest_path).read_text())
    assert m["selection"]["n_libraries"] == 10 and m["selection"]["jitter"] == 250
    ds = predict_store(load_predictor(r.model_path), store, loci=np.arange(10))
    assert ds.profile.shape == (8, 10, 200) and np.isfinite(ds.profile.values).all()


def test_auto_quantity_scale_is_the_mean_training_quantity_and_reloads_safely(lstore, tmp_path):
    import keras

    from clipstore.reader import StoreDataset
    from trainer.predict import load_predictor
    from trainer.train import train

    r = train(tiny_config(lstore, str(tmp_path / "q"), max_epochs=1, quantity_scale="auto"))
    scale = json.loads(Path(r.manifest_path).read_text())["selection"]["quantity_scale"]
    ds = StoreDataset.open(lstore).with_split(1, "train")
    mean_q = float(np.mean(np.concatenate([b.quantity for b in ds.batches(256, shuffle=False)])))
    assert scale == pytest.approx(max(1.0, mean_q), rel=0.5)
    model = keras.saving.load_model(r.model_path, safe_mode=True)
    assert model.get_layer("quantity_scale").scale == pytest.approx(scale)
    assert load_predictor(r.model_path, rc_average=False)(next(ds.batches(4)).x)[1].shape == (4,)
    with pytest.raises(InputError, match="quantity_scale"):
        tiny_config(lstore, str(tmp_path / "bad"), quantity_scale="big")
