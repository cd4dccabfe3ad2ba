"""CLIPNET's released models: Keras 2 `fold_<k>.h5` files of clipnet's own `rnn_v10`, loaded
safely (weights by layer through h5py into our architecture) in predict, score and evaluate
(through load_predictor) and as the starting point of fine-tuning. See tests/_clipnet_release.py
for how the files are written."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from clipstore.errors import InputError
from tests._clipnet_release import have_release_tools, write_release
from tests._train_helpers import learnable_store, tiny_config

pytest.importorskip("tensorflow")
if have_release_tools():
    pytest.skip(have_release_tools(), allow_module_level=True)


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> dict[str, Path]:
    """Three folds at the test store's size (100 bp in, 2 x 50 out) and one full-size fold."""
    d = tmp_path_factory.mktemp("release")
    write_release((d / "folds", 100, 100, 3), (d / "full", 1000, 1000, 1))
    return {"folds": d / "folds", "full": d / "full"}


def test_each_fold_loads_with_the_source_models_predictions(release):
    from trainer.released import load_h5

    src = np.load(release["folds"] / "source_predictions.npz")
    for k in (1, 2, 3):
        model = load_h5(str(release["folds"] / f"fold_{k}.h5"))
        assert model.count_params() == int(src[f"params_{k}"])
        out = model.predict_on_batch(src["x"])
        np.testing.assert_allclose(out["profile"], src[f"profile_{k}"], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(np.ravel(out["quantity"]), src[f"quantity_{k}"], rtol=1e-5)
        assert (src[f"quantity_{k}"] > 0).all()          # the quantity head is compared too


def test_full_size_released_fold_is_clipnet(release):
    from trainer.model import CLIPNET_PARAMS
    from trainer.predict import load_predictor

    src = np.load(release["full"] / "source_predictions.npz")
    pred = load_predictor(str(release["full"] / "fold_1.h5"), rc_average=False)
    assert pred.models[0].count_params() == CLIPNET_PARAMS == int(src["params_1"])
    assert (pred.input_length, pred.output_length) == (1000, 500)
    p, q = pred(src["x"])
    np.testing.assert_allclose(p, src["profile_1"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(q, src["quantity_1"], rtol=1e-5)


def test_a_folder_of_folds_is_the_fold_ensemble(release):
    from trainer.predict import load_predictor

    src = np.load(release["folds"] / "source_predictions.npz")
    pred = load_predictor(str(release["folds"]), rc_average=False)
    assert [Path(p).name for p in pred.paths] == ["fold_1.h5", "fold_2.h5", "fold_3.h5"]
    p, q = pred(src["x"])
    np.testing.assert_allclose(p, np.mean([src[f"profile_{k}"] for k in (1, 2, 3)], 0),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(q, np.mean([src[f"quantity_{k}"] for k in (1, 2, 3)], 0),
                               rtol=1e-5)


def test_predict_and_score_clis_take_the_fold_folder(release, tmp_path):
    import pandas as pd
    import pysam
    from click.testing import CliRunner

    from clipstore.cli import cli
    from trainer.predict import load_predictor

    rng = np.random.default_rng(3)
    seqs = ["".join(rng.choice(list("ACGT"), 100)) for _ in range(3)]
    fa = tmp_path / "s.fa"
    fa.write_text("".join(f">s{i}\n{s}\n" for i, s in enumerate(seqs)))
    r = CliRunner().invoke(cli, ["predict", str(release["folds"]), "--fasta", str(fa), "-o",
                                 str(tmp_path / "p.npz")])
    assert r.exit_code == 0, r.output
    from trainer.predict import encode_sequences, read_fasta

    _, x = encode_sequences(read_fasta(str(fa)), 100)
    want, _ = load_predictor(str(release["folds"]))(x)
    np.testing.assert_allclose(np.load(tmp_path / "p.npz")["profile"], want, rtol=1e-5,
                               atol=1e-6)

    genome = "".join(rng.choice(list("ACGT"), 2000))
    ref = tmp_path / "ref.fa"
    ref.write_text(f">chr5\n{genome}\n")
    pysam.faidx(str(ref))
    rows = [f"chr5\t{pos}\tsnp{pos}\t{genome[pos - 1]}\t{'A' if genome[pos - 1] != 'A' else 'G'}"
            for pos in range(300, 1700, 100)]
    vcf = tmp_path / "snps.tsv"
    vcf.write_text("#CHROM\tPOS\tID\tREF\tALT\n" + "\n".join(rows) + "\n")
    out = tmp_path / "ranked.tsv"
    r = CliRunner().invoke(cli, ["-q", "score", str(vcf), "--fasta", str(ref), "--model",
                                 str(release["folds"]), "-o", str(out)])
    assert r.exit_code == 0, r.output
    got = pd.read_csv(out, sep="\t")
    assert len(got) == len(rows) and np.isfinite(got["log2_quantity_ratio"]).all()


def test_fine_tune_from_a_released_fold_for_one_epoch(release, tmp_path):
    import keras

    from trainer.released import load_h5
    from trainer.train import train

    store = learnable_store(str(tmp_path / "k562.zarr"), reference_only=True, n_loci=160)
    fold = str(release["folds"] / "fold_2.h5")
    r = train(tiny_config(store, str(tmp_path / "ft"), fine_tune_from=fold, max_epochs=1,
                          steps_per_epoch=3, validation_steps=1, learning_rate=1e-3))
    assert r.epochs_run == 1 and np.isfinite(r.history["loss"]).all()
    m = json.loads(Path(r.manifest_path).read_text())
    assert m["config"]["fine_tune_from"] == fold
    assert m["model"]["parameters"] == load_h5(fold).count_params() == 224_393
    tuned = keras.saving.load_model(r.model_path, safe_mode=True, compile=False)
    start = load_h5(fold).get_layer("profile_dense").get_weights()[0]
    after = tuned.get_layer("profile_dense").get_weights()[0]
    assert after.shape == start.shape and not np.array_equal(after, start)   # it trained


def test_other_h5_files_are_refused_without_running_them(tmp_path):
    import h5py

    from trainer.predict import load_predictor

    junk = tmp_path / "fold_1.h5"
    junk.write_bytes(b"\x89HDF-not-really" * 100)
    with pytest.raises(InputError, match="not a readable HDF5 file") as e:
        load_predictor(str(junk))
    assert "fold_1.h5" in e.value.message() and "rnn_v10" in e.value.message()
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:     # a Keras-2-style file of some other network
        f.attrs["model_config"] = json.dumps({"class_name": "Functional", "config": {"layers": [
            {"class_name": "InputLayer", "config": {"name": "in", "batch_input_shape":
                                                    [None, 100, 4]}},
            {"class_name": "Lambda", "config": {"name": "code", "function": "evil"}}]}})
        g = f.create_group("model_weights")
        g.attrs["layer_names"] = [b"in", b"code"]
        g.create_group("in").attrs["weight_names"] = []
        c = g.create_group("code")
        c.attrs["weight_names"] = [b"code/w:0"]
        c["code/w:0"] = np.zeros(3, np.float32)
    with pytest.raises(InputError, match="'code' \\(Lambda\\) is not part of rnn_v10"):
        load_predictor(str(other))
