"""What `clipstore train` / `predict` users see: bad arguments and missing files fail in under
3 s without importing TensorFlow (real processes, timed), and a training run says what it is
doing at every stage, counting epochs over the whole run."""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests._train_helpers import learnable_store, tiny_config

ROOT = Path(__file__).resolve().parents[1]
# run the real CLI entry point; report at exit whether TensorFlow was ever imported
RUNNER = ("import sys, atexit\n"
          "atexit.register(lambda: print('TF_IMPORTED=%s' % ('tensorflow' in sys.modules),"
          " file=sys.stderr))\n"
          "from clipstore.cli import main\nmain(sys.argv[1:])\n")


def _run(args: list[str], cwd: Path) -> tuple[subprocess.CompletedProcess, float]:
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", RUNNER, *args], cwd=cwd, env=env,
                         capture_output=True, text=True, timeout=60)
    return out, time.perf_counter() - t0


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("ff")
    (d / "no_store.yaml").write_text("store: missing.zarr\noutput: m\n")
    (d / "not_a_store").mkdir()
    (d / "plain.yaml").write_text("store: not_a_store\noutput: m\n")
    (d / "ft.yaml").write_text("store: s.zarr\noutput: m\nfine_tune_from: gone/fold_1.h5\n")
    (d / "s.zarr").mkdir()
    (d / "s.zarr/zarr.json").write_text("{}")
    (d / "m.keras").write_bytes(b"x")
    (d / "seqs.fa").write_text(">a\nACGT\n")
    (d / "model.txt").write_text("x")
    return {"dir": d}


CASES = [
    # (args, what the message must name)
    (["train", "missing.yaml"], "missing.yaml"),
    (["train", "no_store.yaml"], "missing.zarr"),
    (["train", "plain.yaml"], "not_a_store"),
    (["train", "ft.yaml"], "fold_1.h5"),
    (["train", "ft.yaml", "--set", "fine_tune_from=null", "--set", "max_epochs=0"], "max_epochs"),
    (["train", "ft.yaml", "--set", "novalue"], "novalue"),
    (["train", "ft.yaml", "--set", "bogus_key=1"], "bogus_key"),
    (["predict", "missing.keras", "--fasta", "seqs.fa", "-o", "o.npz"], "missing.keras"),
    (["predict", "model.txt", "--fasta", "seqs.fa", "-o", "o.npz"], "model.txt"),
    (["predict", "m.keras", "--fasta", "nope.fa", "-o", "o.npz"], "nope.fa"),
    (["predict", "m.keras", "--store", "missing.zarr", "-o", "o.npz"], "missing.zarr"),
    (["predict", "m.keras", "--bed", "x.bed", "-o", "o.npz"], "--fasta"),
    (["predict", "m.keras", "--store", "s.zarr", "--fasta", "seqs.fa", "-o", "o.npz"],
     "exactly one input"),
    (["predict", "m.keras", "--fasta", "seqs.fa", "-o", "no/such/dir/o.npz"], "no/such/dir"),
]


@pytest.mark.parametrize("args,named", CASES, ids=[" ".join(a) for a, _ in CASES])
def test_bad_arguments_fail_fast_without_tensorflow(files, args, named):
    out, seconds = _run(args, files["dir"])
    assert out.returncode == 2, out.stderr
    assert named in out.stderr, out.stderr
    assert "Traceback" not in out.stderr, out.stderr
    assert "TF_IMPORTED=False" in out.stderr, out.stderr
    assert seconds < 3, f"{seconds:.1f} s"


def test_every_stage_is_announced_and_epochs_count_over_the_run(tmp_path, capsys):
    pytest.importorskip("tensorflow")
    from trainer.train import train

    store = learnable_store(str(tmp_path / "s.zarr"), n_loci=160)
    out = str(tmp_path / "m")
    train(tiny_config(store, out, max_epochs=3, steps_per_epoch=2, validation_steps=1),
          quiet=False)
    err = capsys.readouterr().err
    for stage in ("starting from epoch 0", "opening the store", "training and",
                  "building the model", "parameters", "epoch 1/3: first batch",
                  "first batch done in", "epoch 1/3: loss", "epoch 2/3: loss",
                  "epoch 3/3: loss"):
        assert stage in err, (stage, err)
    assert "Epoch 2/2" not in err and "Epoch 3/3" not in err     # Keras' own per-fit count
    train(tiny_config(store, out, max_epochs=4, steps_per_epoch=2, validation_steps=1),
          quiet=False)
    err = capsys.readouterr().err
    assert "loading the checkpoint of epoch 3" in err and "epoch 4/4: loss" in err
    assert "epoch 1/4" not in err
    train(tiny_config(store, out, max_epochs=4, steps_per_epoch=2, validation_steps=1),
          quiet=True)
    assert capsys.readouterr().err == ""
