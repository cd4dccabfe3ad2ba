"""Prediction: safe loading, reverse-complement averaging, ensembles, stores, FASTA/BED inputs,
NPZ/Zarr outputs, and the `clipstore predict` command."""
from __future__ import annotations

import numpy as np
import pytest

from clipstore.errors import InputError
from tests._train_helpers import TINY, learnable_store

pytest.importorskip("tensorflow")


def _save_model(path, seed: int, input_length: int = 100, out2: int = 100) -> str:
    import keras

    from trainer.model import build_model

    keras.utils.set_random_seed(seed)
    m = build_model(input_length, out2, **TINY)
    # move BN statistics off their identity defaults so outputs are not all zero
    for layer in m.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.moving_mean.shape[0]
            layer.moving_mean.assign(np.random.default_rng(seed).normal(0, 0.1, n))
            layer.beta.assign(np.full(n, 0.5, "float32"))
    m.save(str(path))
    return str(path)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("models")
    return [_save_model(d / f"m{i}.keras", i) for i in range(2)]


@pytest.fixture(scope="module")
def pstore(tmp_path_factory) -> str:
    return learnable_store(str(tmp_path_factory.mktemp("pstore") / "store.zarr"), n_loci=64)


def _x(n: int = 6, L: int = 100, seed: int = 0) -> np.ndarray:
    from clipstore.encoding import two_hot_iupac

    rng = np.random.default_rng(seed)
    return np.stack([two_hot_iupac("".join(rng.choice(list("ACGTRYN"), L))) for _ in range(n)])


def test_rc_averaged_predictions_are_strand_consistent(models):
    from clipstore.encoding import reverse_complement
    from trainer.predict import flip_profile, load_predictor

    x = _x()
    xr = reverse_complement(x)
    plain = load_predictor(models[0], rc_average=False)
    p, q = plain(x)
    prc, qrc = plain(xr)
    assert p.shape == (6, 100) and q.shape == (6,) and p.dtype == np.float32
    assert (p >= 0).all() and (q >= 0).all() and p.max() > 0
    # the raw model is not strand-symmetric, so this check could fail without averaging
    assert not np.allclose(p, flip_profile(prc), atol=1e-4)
    avg = load_predictor(models[0], rc_average=True)
    a, qa = avg(x)
    b, qb = avg(xr)
    np.testing.assert_allclose(a, flip_profile(b), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(qa, qb, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(a, (p + flip_profile(prc)) / 2, rtol=1e-5, atol=1e-6)


def test_flip_profile_reverses_positions_and_swaps_strands():
    from trainer.predict import flip_profile

    prof = np.arange(8, dtype=np.float32)[None]          # plus 0..3, minus 4..7
    np.testing.assert_array_equal(flip_profile(prof), [[7, 6, 5, 4, 3, 2, 1, 0]])


def test_ensemble_is_the_mean_of_its_members(models):
    from trainer.predict import load_predictor

    x = _x(4)
    ens = load_predictor(models, rc_average=False, batch_size=3)
    parts = [load_predictor(m, rc_average=False)(x) for m in models]
    p, q = ens(x)
    np.testing.assert_allclose(p, (parts[0][0] + parts[1][0]) / 2, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(q, (parts[0][1] + parts[1][1]) / 2, rtol=1e-5, atol=1e-6)
    assert ens.input_length == 100 and ens.output_length == 50
    with pytest.raises(InputError, match="shape"):
        ens(np.zeros((2, 90, 4)))


def test_safe_mode_refuses_models_carrying_code(tmp_path):
    import keras

    from trainer.predict import load_predictor

    inp = keras.Input((100, 4))
    out = keras.layers.Lambda(lambda t: t * 2)(inp)
    keras.Model(inp, {"profile": keras.layers.Flatten()(out), "quantity": out[:, 0, :1]}).save(
        tmp_path / "lambda.keras")
    with pytest.raises(InputError, match="cannot load model safely"):
        load_predictor(str(tmp_path / "lambda.keras"))
    with pytest.raises(InputError, match="model not found"):
        load_predictor(str(tmp_path / "missing.keras"))


def test_ensemble_members_must_agree(models, tmp_path):
    from trainer.predict import load_predictor

    other = _save_model(tmp_path / "o.keras", 3, input_length=80)
    with pytest.raises(InputError, match="disagree"):
        load_predictor([models[0], other])


def test_predict_store_matches_direct_calls(models, pstore):
    from clipstore.reader import StoreDataset
    from trainer.predict import load_predictor, predict_store

    pred = load_predictor(models[0])
    ds = predict_store(pred, pstore, loci=[0, 5, 9])
    assert ds.profile.dims == ("individual", "locus", "out_position")
    assert ds.profile.shape == (4, 3, 100) and ds.quantity.shape == (4, 3)
    assert list(ds.individual.values) == ["ind000", "ind001", "ind002", "ind003"]
    # individual 2, locus 5 read independently through the reader
    sel = (StoreDataset.open(pstore).with_libraries([2]).with_loci([5])
           .with_lengths(100, 50))
    b = next(sel.batches(8, shuffle=False))
    p, q = pred(b.x)
    np.testing.assert_allclose(ds.profile.sel(individual="ind002", locus=5).values, p[0],
                               rtol=1e-5, atol=1e-6)
    masked = predict_store(pred, pstore, loci=[0, 5], masked=True)
    assert list(masked.individual.values) == ["reference"] and masked.profile.shape == (1, 2, 100)
    some = predict_store(pred, pstore, loci=[1], individuals=["ind003"])
    assert some.profile.shape == (1, 1, 100)
    with pytest.raises(InputError, match="no individual"):
        predict_store(pred, pstore, individuals=["nobody"])


def test_fasta_iupac_haplotypes_bed_and_outputs(models, tmp_path):
    import pysam
    import xarray as xr

    from clipstore.encoding import two_hot, two_hot_iupac
    from trainer.predict import (encode_sequences, load_predictor, predict_arrays, read_fasta,
                                 save_predictions, sequences_from_bed)

    rng = np.random.default_rng(1)
    s1 = "".join(rng.choice(list("ACGT"), 120))
    s2 = s1[:50] + ("A" if s1[50] != "A" else "C") + s1[51:]
    fa = tmp_path / "seqs.fa"
    fa.write_text(f">a\n{s1[:60]}\n{s1[60:]}\n>b\n{s2}\n")
    with pytest.raises(InputError, match=r"2 of 2 record\(s\) are longer.*first: a, 120 bp"
                       r".*--crop") as e:
        encode_sequences(read_fasta(str(fa)), 100, source=str(fa))   # never a silent crop
    assert e.value.file == str(fa)
    names, x = encode_sequences(read_fasta(str(fa)), 100, crop=True)
    assert names == ["a", "b"] and x.shape == (2, 100, 4)
    np.testing.assert_array_equal(x[0], two_hot_iupac(s1[10:110]))
    names, xh = encode_sequences(read_fasta(str(fa)), 100, encoding="haplotypes", crop=True)
    assert names == ["a"]
    np.testing.assert_array_equal(xh[0], two_hot(s1[10:110], s2[10:110]))
    with pytest.raises(InputError, match="needs 200"):
        encode_sequences(read_fasta(str(fa)), 200)

    genome = "".join(rng.choice(list("ACGT"), 1000))
    ref = tmp_path / "ref.fa"
    ref.write_text(f">chr7\n{genome}\n")
    pysam.faidx(str(ref))
    bed = tmp_path / "x.bed"
    bed.write_text("chr7\t300\t340\tpeakA\nchr7\t600\t601\n")
    names, xb = sequences_from_bed(str(bed), str(ref), 100)
    assert names == ["peakA", "chr7:600-601"]
    np.testing.assert_array_equal(xb[0], two_hot_iupac(genome[270:370]))   # 2 x one-hot
    bed.write_text("chr7\t980\t990\n")
    with pytest.raises(InputError, match="off the FASTA"):
        sequences_from_bed(str(bed), str(ref), 100)

    pred = load_predictor(models)
    ds = predict_arrays(pred, ["a", "b"], x)
    npz = np.load(save_predictions(ds, str(tmp_path / "p.npz")))
    np.testing.assert_allclose(npz["profile"], ds.profile.values)
    assert list(npz["sequence"]) == ["a", "b"]
    z = xr.open_zarr(save_predictions(ds, str(tmp_path / "p.zarr")), consolidated=False)
    np.testing.assert_allclose(z.quantity.values, ds.quantity.values)


def test_predict_cli(models, pstore, tmp_path, caplog):
    from click.testing import CliRunner

    from clipstore.cli import cli

    fa = tmp_path / "s.fa"
    fa.write_text(">s1\n" + "ACGT" * 25 + "\n>s2\n" + "TTGCA" * 20 + "\n")
    r = CliRunner().invoke(cli, ["predict", *models, "--fasta", str(fa), "-o",
                                 str(tmp_path / "o.npz")])
    assert r.exit_code == 0, r.output
    assert np.load(tmp_path / "o.npz")["profile"].shape == (2, 100)
    r = CliRunner().invoke(cli, ["predict", models[0], "--store", pstore, "--individual",
                                 "ind001", "-o", str(tmp_path / "o.zarr")])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(cli, ["predict", models[0], "-o", str(tmp_path / "x.npz")])
    assert isinstance(r.exception, InputError)
    # 1,000 bp records for a 100 bp model: refused, or cropped on request with a warning
    fa.write_text(">long\n" + "ACGT" * 250 + "\n")
    r = CliRunner().invoke(cli, ["predict", models[0], "--fasta", str(fa), "-o",
                                 str(tmp_path / "c.npz")])
    assert isinstance(r.exception, InputError) and "--crop" in str(r.exception)
    assert "long" in str(r.exception) and "1000 bp" in str(r.exception)
    r = CliRunner().invoke(cli, ["predict", models[0], "--fasta", str(fa), "--crop", "-o",
                                 str(tmp_path / "c.npz")])
    assert r.exit_code == 0, r.output
    assert "cropped 1 of 1 record(s) to their centre 100 bp" in caplog.text


def test_clipnet_example_fasta_through_the_full_size_model():
    """CLIPNET's own example windows (real hg38, 1 kb) into the released architecture."""
    from tests.conftest import real_data
    from trainer.model import build_model
    from trainer.predict import Predictor, encode_sequences, read_fasta

    fa = real_data("clipnet", "test.fa")
    names, x = encode_sequences(read_fasta(str(fa)), 1000)
    assert len(names) == 5 and names[0] == "chr9:70419676-70420675"
    assert x.shape == (5, 1000, 4) and set(np.unique(x.sum(-1))) <= {0, 2}
    pred = Predictor([build_model()], rc_average=True)
    p, q = pred(x)
    assert p.shape == (5, 1000) and q.shape == (5,) and pred.output_length == 500
