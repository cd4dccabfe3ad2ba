"""Cross-locus metrics against scipy, computed independently row by row, and the store driver
against predictions and tracks read straight from the Zarr arrays."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import zarr
from scipy.spatial.distance import jensenshannon
from scipy.stats import pearsonr, spearmanr

from clipstore import layout
from evaluation import crossloci
from evaluation.baseline import MotifPredictor
from tests._synthetic import synthetic_store


def _profiles(seed=0, n=40, out=30):
    rng = np.random.default_rng(seed)
    obs = rng.poisson(rng.gamma(0.5, 2, (n, 1)) * rng.random((n, 2 * out)) * 3).astype(np.float32)
    pred = np.clip(obs + rng.normal(0, 1.5, obs.shape), 0, None).astype(np.float32)
    return pred.astype(np.float64), obs.astype(np.float64)


def test_metrics_match_scipy():
    pred, obs = _profiles()
    obs[3] = 0                      # flat observed row: no r, no JS
    pq, oq = pred.sum(1) * 1.1, obs.sum(1)
    m = crossloci.metrics(pred, obs, pq, oq)
    rs = [pearsonr(p, o)[0] for p, o in zip(pred, obs) if o.std() > 0]
    js = [jensenshannon(p / p.sum(), o / o.sum(), base=2) for p, o in zip(pred, obs) if o.sum() > 0]
    assert m["n"] == 40
    assert m["profile_r_median"] == pytest.approx(np.median(rs), abs=1e-9)
    assert m["profile_r_mean"] == pytest.approx(np.mean(rs), abs=1e-9)
    assert m["js_median"] == pytest.approx(np.median(js), abs=1e-6)
    assert m["js_mean"] == pytest.approx(np.mean(js), abs=1e-6)
    d = lambda a: np.log1p(a[:, :30].sum(1)) - np.log1p(a[:, 30:].sum(1))
    assert m["directionality_r"] == pytest.approx(pearsonr(d(pred), d(obs))[0], abs=1e-9)
    keep = obs[:, :30].sum(1) > 0
    assert m["tss_r_plus"] == pytest.approx(
        pearsonr(pred[keep, :30].argmax(1), obs[keep, :30].argmax(1))[0], abs=1e-9)
    keep = obs[:, 30:].sum(1) > 0
    assert m["tss_r_minus"] == pytest.approx(
        pearsonr(pred[keep, 30:].argmax(1), obs[keep, 30:].argmax(1))[0], abs=1e-9)
    assert m["quantity_log_r"] == pytest.approx(pearsonr(np.log1p(pq), np.log1p(oq))[0], abs=1e-9)
    assert m["quantity_spearman"] == pytest.approx(spearmanr(pq, oq)[0], abs=1e-9)


def test_perfect_prediction_and_shape_errors():
    _, obs = _profiles(1)
    obs += 1
    m = crossloci.metrics(obs, obs)
    assert m["profile_r_median"] == pytest.approx(1) and m["js_mean"] == pytest.approx(0, abs=1e-6)
    assert m["directionality_r"] == pytest.approx(1) and m["quantity_log_r"] == pytest.approx(1)
    with pytest.raises(ValueError):
        crossloci.metrics(obs[:, :-1], obs[:, :-1])
    with pytest.raises(ValueError):
        crossloci.metrics(obs, obs[:5])


def test_per_locus_table():
    pred, obs = _profiles(2)
    t = crossloci.per_locus(pred, obs)
    assert t["profile_r"].iloc[5] == pytest.approx(pearsonr(pred[5], obs[5])[0], abs=1e-9)


def test_evaluate_store_reads_each_fold(tmp_path):
    url = synthetic_store(str(tmp_path / "s.zarr"), n_loci=60, n_individuals=3, replicates=1,
                          input_length=100, max_jitter=10, output_length=50, shard_loci=16,
                          variant_rate=1e-2)
    root = zarr.open_group(url, mode="r")
    fold = root["fold"][:]
    folds = [f for f in np.unique(fold) if f >= 0][:2]
    preds = {int(f): MotifPredictor(100, 40, scale=1 + f) for f in folds}
    table = crossloci.evaluate_store(url, preds)
    assert list(table["fold"]) == sorted(int(f) for f in folds)
    seq, sig = layout.sequence(root)[:], root["signal"][:]
    lib_ind = root["library_individual"][:]
    for f, row in zip(table["fold"], table.itertuples()):
        loci = np.flatnonzero(fold == f)
        # independently: every (library, locus) pair, centred windows cut from the raw arrays
        x = np.stack([seq[lib_ind[l], k, 10:110] for l in range(sig.shape[0]) for k in loci])
        # output 40:80 of the 120 bp sequence window; the stored signal window (50 + 2 x 10
        # bp) starts at (100 - 50) // 2 = 25 in it, so that is 15:55 of the signal
        assert sig.shape[2] == 70
        y = np.stack([sig[l, k, 15:55].T.reshape(-1) for l in range(sig.shape[0]) for k in loci])
        p, q = preds[f](x)
        want = crossloci.metrics(p, y, q, y.sum(1))
        assert row.n == len(loci) * sig.shape[0]
        for k in ("profile_r_median", "directionality_r", "quantity_log_r", "js_mean"):
            assert getattr(row, k) == pytest.approx(want[k], nan_ok=True, abs=1e-6)
        assert row.model == ("ensemble" if f == 0 else f"replicate_{f}")


def test_cli_crossloci_on_simulated_store(store, tmp_path):
    """`clipstore evaluate crossloci` with saved Keras models: rows for the ensemble (fold 0)
    and replicate 1 (fold 1), equal to evaluate_store with the same loaded predictors."""
    pytest.importorskip("tensorflow")
    from click.testing import CliRunner

    from clipstore.cli import cli
    from trainer.model import build_model
    from trainer.predict import load_predictor

    paths = []
    for i in range(2):
        p = tmp_path / f"m{i}.keras"
        build_model(1000, 1000, conv_filters=(4, 4), filters=4, n_dilated=1).save(p)
        paths.append(str(p))
    out = tmp_path / "out"
    res = CliRunner().invoke(cli, ["-q", "evaluate", "crossloci", store, "--ensemble", paths[0],
                                   "--replicate", f"1={paths[1]}", "-o", str(out)])
    assert res.exit_code == 0, res.output
    got = pd.read_csv(out / "crossloci.csv")
    assert got["model"].tolist() == ["ensemble", "replicate_1"]
    want = crossloci.evaluate_store(store, {0: load_predictor(paths[0]), 1: load_predictor(paths[1])})
    np.testing.assert_allclose(got["quantity_log_r"], want["quantity_log_r"], rtol=1e-5)
    assert (got["n"] > 0).all()
    assert (out / "crossloci_quantity_ensemble.png").exists()
    res = CliRunner().invoke(cli, ["evaluate", "crossloci", store, "--replicate", f"0={paths[1]}"])
    assert res.exit_code != 0


def test_example_stats_chunking_is_invisible():
    pred, obs = _profiles(4, n=50)
    a = crossloci.example_stats(pred, obs, chunk=7)
    b = crossloci.example_stats(pred, obs)
    pd.testing.assert_frame_equal(a, b)
    assert crossloci.summarise(a) == crossloci.metrics(pred, obs)


class _Zero:
    """A model that predicts no initiation anywhere (an untrained or collapsed network)."""
    input_length, output_length = 100, 40

    def __call__(self, x):
        return np.zeros((len(x), 80), np.float32), np.zeros(len(x), np.float32)


def test_all_zero_predictions_are_named_not_a_silent_nan(tmp_path):
    url = synthetic_store(str(tmp_path / "s.zarr"), n_loci=30, n_individuals=3, replicates=1,
                          input_length=100, max_jitter=10, output_length=50, shard_loci=16,
                          variant_rate=1e-2)
    fold = int(zarr.open_group(url, mode="r")["fold"][0])
    table = crossloci.evaluate_store(url, {fold: _Zero()})
    assert np.isnan(table["quantity_log_r"].iloc[0])
    assert "every predicted quantity is 0" in table["note"].iloc[0]
    ok = crossloci.evaluate_store(url, {fold: MotifPredictor(100, 40)})
    assert ok["note"].iloc[0] == ""


def test_predictions_from_a_file_equal_the_model_and_cli(tmp_path):
    """An .npz keyed by locus_id and library_id (another tool's output) gives the same metrics
    as predicting in-process; through the CLI too; all-zero predictions are named."""
    import subprocess
    import sys

    from clipstore.reader import StoreDataset

    url = synthetic_store(str(tmp_path / "s.zarr"), n_loci=40, n_individuals=3, replicates=2,
                          input_length=100, max_jitter=10, output_length=50, shard_loci=16,
                          variant_rate=1e-2)
    ds = StoreDataset.open(url)
    f = int(ds.meta.fold[0])
    pred = MotifPredictor(100, 40, threshold=0.3)
    part = ds.with_loci(ds.meta.fold == f).with_lengths(100, 40)
    rows = {"locus_id": [], "library_id": [], "profile": [], "quantity": []}
    for b in part.batches(64, shuffle=False):
        p, q = pred(b.x)
        rows["locus_id"] += ds.meta.locus_id[b.locus].tolist()
        rows["library_id"] += ds.meta.library_id[b.library].tolist()
        rows["profile"].append(p)
        rows["quantity"].append(q)
    arrays = {"locus_id": np.array(rows["locus_id"], str), "library_id": np.array(rows["library_id"], str),
              "profile": np.concatenate(rows["profile"]), "quantity": np.concatenate(rows["quantity"])}
    np.savez(tmp_path / "p.npz", **arrays)
    got = crossloci.evaluate_predictions(url, tmp_path / "p.npz")
    want = crossloci.evaluate_store(url, {f: pred})
    assert got["n"].item() == want["n"].item() > 0 and got["fold"].item() == str(f)
    for k in ("profile_r_median", "js_mean", "directionality_r", "quantity_log_r", "tss_r"):
        assert got[k].item() == pytest.approx(want[k].item(), nan_ok=True, abs=1e-9)
    cmd = [sys.executable, "-m", "clipstore", "evaluate", "crossloci", url, "--predictions",
           str(tmp_path / "p.npz"), "-o", str(tmp_path / "o")]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    csv = pd.read_csv(tmp_path / "o" / "crossloci.csv")
    assert csv["model"].tolist() == ["external"]
    assert csv["quantity_log_r"].item() == pytest.approx(want["quantity_log_r"].item())
    np.savez(tmp_path / "z.npz", **{**arrays, "profile": np.zeros_like(arrays["profile"]),
                                    "quantity": np.zeros_like(arrays["quantity"])})
    cmd[7] = str(tmp_path / "z.npz")
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "every predicted quantity is 0" in r.stderr
    np.savez(tmp_path / "bad.npz", **{**arrays, "locus_id": np.array(["nowhere"] * len(arrays["locus_id"]))})
    cmd[7] = str(tmp_path / "bad.npz")
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "not in the store" in r.stderr and "nowhere" in r.stderr
