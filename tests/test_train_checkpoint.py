"""Damaged and interrupted checkpoints: each is a clear InputError naming the file and the way
out (`--fresh`), a save cut between its two renames is finished, a missing checkpoint says that
training starts from epoch 0. (The kill -9 bit-for-bit trial is in test_train.py.)"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path

import pytest

from clipstore.errors import InputError
from tests._train_helpers import learnable_store, tiny_config
from trainer import checkpoint
from trainer.config import TrainConfig

pytest.importorskip("tensorflow")


@pytest.fixture(scope="module")
def lstore(tmp_path_factory) -> str:
    return learnable_store(str(tmp_path_factory.mktemp("ck") / "store.zarr"), n_loci=160)


@pytest.fixture(scope="module")
def finished(lstore, tmp_path_factory) -> Path:
    """A finished 2-epoch run; each test damages its own copy."""
    from trainer.train import train

    out = tmp_path_factory.mktemp("run") / "m"
    train(tiny_config(lstore, str(out), max_epochs=2, steps_per_epoch=2, validation_steps=1))
    return out


def _copy(finished: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "m"
    shutil.copytree(finished, dst)
    return dst


def _cfg(lstore: str, out: Path, **kw):
    return tiny_config(lstore, str(out), max_epochs=kw.pop("max_epochs", 3), steps_per_epoch=2,
                       validation_steps=1, **kw)


def _refused(lstore: str, out: Path, damaged: str, match: str) -> InputError:
    from trainer.train import train

    with pytest.raises(InputError, match=match) as e:
        train(_cfg(lstore, out))
    text = e.value.message()
    assert damaged in text and "--fresh" in text, text
    return e.value


def test_truncated_last_keras(lstore, finished, tmp_path):
    out = _copy(finished, tmp_path)
    last = out / "checkpoint/last.keras"
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])
    _refused(lstore, out, "last.keras", "does not match its state")


def test_garbage_last_keras(lstore, finished, tmp_path):
    out = _copy(finished, tmp_path)
    last = out / "checkpoint/last.keras"
    last.write_bytes(os.urandom(last.stat().st_size))
    _refused(lstore, out, "last.keras", "does not match its state")


def test_garbage_last_keras_of_a_state_without_its_hash(lstore, finished, tmp_path):
    """States written before the hash was recorded: the load itself is checked."""
    out = _copy(finished, tmp_path)
    st = out / "checkpoint/state.json"
    state = json.loads(st.read_text())
    del state["checkpoint"]
    st.write_text(json.dumps(state))
    last = out / "checkpoint/last.keras"
    last.write_bytes(os.urandom(last.stat().st_size))
    _refused(lstore, out, "last.keras", "cannot be read")


def test_truncated_state_json(lstore, finished, tmp_path):
    out = _copy(finished, tmp_path)
    st = out / "checkpoint/state.json"
    st.write_text(st.read_text()[:100])
    _refused(lstore, out, "state.json", "not complete JSON")


def test_state_without_model_and_model_without_state(lstore, finished, tmp_path):
    out = _copy(finished, tmp_path)
    (out / "checkpoint/last.keras").unlink()
    _refused(lstore, out, "last.keras", "model is missing")
    out2 = _copy(finished, tmp_path / "b")
    (out2 / "checkpoint/state.json").unlink()
    _refused(lstore, out2, "state.json", "state is missing")


def test_fresh_starts_a_damaged_run_again_from_epoch_0(lstore, finished, tmp_path, capsys):
    from trainer.train import train

    out = _copy(finished, tmp_path)
    (out / "checkpoint/state.json").write_text("{")
    r = train(_cfg(lstore, out, max_epochs=1), fresh=True, quiet=False)
    assert r.resumed_from == 0 and r.epochs_run == 1
    assert "starting from epoch 0" in capsys.readouterr().err
    assert len((out / "log.csv").read_text().splitlines()) == 2   # header + the new epoch


def test_missing_checkpoint_says_it_starts_from_epoch_0(lstore, tmp_path, capsys):
    from trainer.train import train

    r = train(_cfg(lstore, tmp_path / "new", max_epochs=1), quiet=False)
    assert r.resumed_from == 0
    err = capsys.readouterr().err
    assert "no checkpoint in" in err and "starting from epoch 0" in err


def test_kill_between_the_two_renames_is_rolled_forward(lstore, finished, tmp_path):
    """The model was renamed into place, the state was not: the complete `.tmp` state whose
    hash matches the model is taken, so the run is at its last epoch (here: finished)."""
    from trainer.train import train

    out = _copy(finished, tmp_path)
    st = out / "checkpoint/state.json"
    os.replace(st, st.with_name("state.json.tmp"))
    r = train(_cfg(lstore, out, max_epochs=2))
    assert r.resumed_from is None and r.epochs_run == 2      # nothing left to train
    assert st.exists() and not st.with_name("state.json.tmp").exists()


def test_kill_before_the_model_rename_keeps_the_old_pair(lstore, finished, tmp_path):
    """A `.tmp` state whose hash does not match the model in place is the unfinished save of
    the next epoch: it is dropped and the run resumes from the pair on disk."""
    from trainer.train import train

    out = _copy(finished, tmp_path)
    st = out / "checkpoint/state.json"
    pending = json.loads(st.read_text())
    pending["epoch"] += 1
    pending["checkpoint"]["sha256"] = "0" * 64
    st.with_name("state.json.tmp").write_text(json.dumps(pending))
    r = train(_cfg(lstore, out, max_epochs=3))
    assert r.resumed_from == 2 and r.epochs_run == 3
    assert not st.with_name("state.json.tmp").exists()


def test_refolded_store_refuses_the_old_checkpoint(lstore, tmp_path):
    """`clipstore folds` after training: the run's validation loci changed, so neither resuming
    nor reporting the run as finished may reuse the old checkpoint; --fresh trains anew."""
    from clipstore.refold import refold
    from trainer.train import train

    store = tmp_path / "s.zarr"
    shutil.copytree(lstore, store)
    out = tmp_path / "m"
    train(_cfg(str(store), out, max_epochs=2))
    refold(str(store), {"scheme": "blocks", "block_size": 20_000, "seed": 7})
    with pytest.raises(InputError, match="selection changed") as e:
        train(_cfg(str(store), out, max_epochs=2))
    assert "--fresh" in e.value.message() and "state.json" in e.value.message()
    assert train(_cfg(str(store), out, max_epochs=2), fresh=True).resumed_from == 0


def test_a_model_dict_with_tuples_resumes_after_its_json_round_trip():
    """state.json stores the config as JSON, where tuples come back as lists; the demo's plans
    give the model as a dict with tuples, and a rerun must resume, not be refused."""
    cfg = TrainConfig(store="s.zarr", output="o",
                      model={"conv_filters": (32, 64), "filters": 32, "n_dilated": 0})
    saved = json.loads(json.dumps(cfg.to_dict()))
    checkpoint.check_same_run(saved, cfg, "o")                      # no error
    other = dataclasses.replace(cfg, model={"conv_filters": (16, 64), "filters": 32,
                                            "n_dilated": 0})
    with pytest.raises(InputError, match="different configuration"):
        checkpoint.check_same_run(saved, other, "o")
