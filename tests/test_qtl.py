"""QTL scoring: genotypes, observed and predicted tracks and the leakage-free composite,
checked against values computed straight from the Zarr arrays; the real hQTL table parses."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import zarr

from clipstore import layout
from clipstore.errors import InputError
from evaluation import qtl
from evaluation.baseline import MotifPredictor
from tests._synthetic import synthetic_store
from tests.conftest import real_data

W, L, O = 120, 100, 50


def test_l2_score_by_hand():
    t = np.arange(12, dtype=float).reshape(4, 3) ** 1.5
    g = np.array([0, 2, 1, 2])
    assert qtl.l2_score(t, g) == pytest.approx(np.linalg.norm(t[0] - (t[1] + t[3]) / 2))
    assert np.isnan(qtl.l2_score(t, np.array([0, 1, 1, np.nan])))
    e = qtl.group_effects(t, g)
    assert e["l2"] == pytest.approx(qtl.l2_score(t, g))


@pytest.fixture(scope="module")
def qtl_store(tmp_path_factory):
    """A synthetic store with planted biallelic genotypes (0/1/2) at one site per locus."""
    url = synthetic_store(str(tmp_path_factory.mktemp("q") / "s.zarr"), n_loci=40, n_individuals=8,
                          replicates=2, input_length=L, max_jitter=10, output_length=O,
                          shard_loci=16, variant_rate=0, seed=3)
    root = zarr.open_group(url, mode="r+")
    seq, ref = layout.sequence(root)[:], root["reference"][:]
    rng = np.random.default_rng(0)
    rows = []
    for locus in range(40):
        off = int(rng.integers(40, 80))
        b = int(ref[locus, off].argmax())
        a = (b + int(rng.integers(1, 4))) % 4
        g = rng.permutation([0, 0, 0, 1, 1, 2, 2, 2])
        eye = np.eye(4, dtype=np.uint8)
        seq[:, locus, off] = eye[b] * (2 - g)[:, None] + eye[a] * g[:, None]
        if locus == 5:                          # one individual carries a third allele
            seq[0, locus, off] = eye[({0, 1, 2, 3} - {a, b}).pop()] * 2
        rows.append({"variant_id": f"q{locus}", "chrom": str(root["chrom"][locus]),
                     "pos": int(root["start"][locus]) + off + 1, "ref": "ACGT"[b], "alt": "ACGT"[a],
                     "locus_id": str(root["locus_id"][locus]) if locus % 4 else None,
                     "kind": "ti" if locus % 2 else "di", "effect": 0.0})
    layout.sequence(root)[:] = seq
    rows.append({**rows[0], "variant_id": "nowhere", "pos": 10**9, "locus_id": None})
    return url, pd.DataFrame(rows)


def _expected(url, row, predictor):
    root = zarr.open_group(url, mode="r")
    seq = layout.sequence(root)[:, row.locus]
    sig = root["signal"][:, row.locus].astype(float)
    off = row.pos - 1 - root["start"][row.locus]
    b, a = "ACGT".index(row.ref), "ACGT".index(row.alt)
    g = np.where(seq[:, off, b] + seq[:, off, a] == 2, seq[:, off, a], np.nan)
    rpm = 1e6 / root["total_counts"][:]
    lib_ind = root["library_individual"][:]
    # centred output window: (W - O) // 2 = 35 bp into the sequence window; the stored signal
    # window (O + 2 x jitter 10 = 70 bp) starts (L - O) // 2 = 25 bp into it, so 10 bp into signal
    o0 = (W - O) // 2 - (L - O) // 2
    assert sig.shape[1] == O + (W - L)
    obs = np.stack([np.mean([np.r_[sig[l, o0:o0 + O, 0], sig[l, o0:o0 + O, 1]] * rpm[l]
                             for l in np.flatnonzero(lib_ind == i)], axis=0) for i in range(8)])
    p, q = predictor(seq[:, (W - L) // 2:(W - L) // 2 + L])
    p = p.astype(float) / p.astype(float).sum(1, keepdims=True) * q.astype(float)[:, None]
    l2 = lambda t: np.linalg.norm(t[g == 0].mean(0) - t[g == 2].mean(0))
    return g, l2(obs), l2(np.nan_to_num(p))


def test_evaluate_store_composite_matches_arrays(qtl_store):
    url, table = qtl_store
    root = zarr.open_group(url, mode="r")
    folds = sorted(set(root["fold"][:].tolist()))
    dropped = folds[-1]                                     # one fold has no model given
    preds = {f: MotifPredictor(L, O, scale=1.0 + f, threshold=0.3) for f in folds if f != dropped}
    scores, summary = qtl.evaluate_store(url, table, preds)
    assert "nowhere" not in set(scores.variant_id) and len(scores) == 40
    assert scores.loc[scores.variant_id == "q4", "locus_id"].item() == root["locus_id"][4]
    for row in scores.itertuples():
        f = int(root["fold"][row.locus])
        assert row.fold == f
        if f == dropped:
            assert row.model == "none" and np.isnan(row.pred_l2)
            continue
        assert row.model == ("ensemble" if f == 0 else f"replicate_{f}")
        g, obs_l2, pred_l2 = _expected(url, row, preds[f])
        assert (row.n_homref, row.n_het, row.n_homalt) == (np.sum(g == 0), np.sum(g == 1), np.sum(g == 2))
        assert row.obs_l2 == pytest.approx(obs_l2, rel=1e-6)
        assert row.pred_l2 == pytest.approx(pred_l2, rel=1e-5, abs=1e-9)
    assert scores.loc[scores.variant_id == "q5", "n_homref"].item() + \
        scores.loc[scores.variant_id == "q5", "n_homalt"].item() + \
        scores.loc[scores.variant_id == "q5", "n_het"].item() == 7
    used = scores[scores.model != "none"]
    assert summary["n"] == len(used)
    assert summary["pearson_r"] == pytest.approx(np.corrcoef(used.pred_l2, used.obs_l2)[0, 1])
    assert summary["share_no_effect"] == pytest.approx(np.mean(used.pred_l2 <= 1e-6))
    assert set(summary["by_kind"]) == {"ti", "di"}


def test_masked_inputs_predict_no_effect(qtl_store):
    url, table = qtl_store
    scores, summary = qtl.evaluate_store(url, table, MotifPredictor(L, O), masked=True)
    assert summary["share_no_effect"] == 1.0 and (scores.model == "single").all()


def test_only_snps_inside_the_model_input_are_scored(qtl_store):
    """The window rule: a SNP at the first (or last) base of the predictor's input is scored;
    one base further out it is left out and counted, never scored as pred_l2 = 0."""
    url, table = qtl_store
    root = zarr.open_group(url, mode="r")
    offs = [int(r.pos) - 1 - int(root["start"][i]) for i, r in enumerate(table.iloc[:40].itertuples())]
    left = next(i for i, o in enumerate(offs) if W - 2 * o >= 12)     # input can start at o
    right = next(i for i, o in enumerate(offs) if 2 * o - W + 2 >= 12)  # input can end at o
    cases = [(left, W - 2 * offs[left], W - 2 * (offs[left] + 1)),
             (right, 2 * offs[right] - W + 2, 2 * offs[right] - W)]
    for i, inside, outside in cases:
        one = table.iloc[[i]]
        s_in, sum_in = qtl.evaluate_store(url, one, MotifPredictor(inside, 10))
        assert s_in.model.tolist() == ["single"] and np.isfinite(s_in.pred_l2).all()
        assert sum_in["left_out"]["outside_input"] == 0 and sum_in["n"] == 1
        s_out, sum_out = qtl.evaluate_store(url, one, MotifPredictor(outside, 10))
        assert s_out.model.tolist() == ["outside_input"] and np.isnan(s_out.pred_l2).all()
        assert np.isfinite(s_out.obs_l2).all()                   # observed side still there
        assert sum_out["left_out"]["outside_input"] == 1 and sum_out["n"] == 0
        assert np.isnan(sum_out["share_no_effect"])              # not counted as "no effect"


def _cli(args):
    """`python -m clipstore ARGS` in a real process: exit codes and messages as a user sees them."""
    import subprocess
    import sys

    p = subprocess.run([sys.executable, "-m", "clipstore", *map(str, args)], capture_output=True,
                       text=True, timeout=120)
    return p.returncode, p.stdout + p.stderr


def test_cli_qtl_with_only_replicates_on_test_fold_loci_says_why(qtl_store, tmp_path):
    """All QTLs on test-fold loci and only --replicate given: exit 2 naming fold 0 and
    --ensemble, instead of a silent `n: 0`."""
    url, table = qtl_store
    root = zarr.open_group(url, mode="r")
    fold = root["fold"][:]
    on0 = [i for i in range(40) if fold[i] == 0]
    assert on0, "the fixture needs loci on fold 0"
    path = tmp_path / "q.tsv"
    table.iloc[on0].to_csv(path, sep="\t", index=False)
    rc, out = _cli(["-q", "evaluate", "qtl", url, path, "--replicate", f"1=motif:{L}:{O}",
                    "-o", tmp_path / "o"])
    assert rc == 2, out
    assert "fold 0 is the test fold" in out and "--ensemble" in out and f"{len(on0)} on fold 0" in out
    rc, out = _cli(["-q", "evaluate", "qtl", url, path, "--ensemble", f"motif:{L}:{O}",
                    "-o", tmp_path / "o"])
    assert rc == 0, out
    assert '"n": ' in out and '"n": 0' not in out


def test_qtl_predictions_from_a_file(qtl_store, tmp_path):
    """Another tool's pred_l2 per variant (TSV and .npz): the summary equals scoring the same
    numbers in-process; variants the file leaves NaN are counted as not predicted."""
    url, table = qtl_store
    scores, summary = qtl.evaluate_store(url, table, MotifPredictor(L, O))
    pred = scores[["variant_id", "pred_l2", "pred_log_quantity_change"]].copy()
    pred.loc[0, "pred_l2"] = np.nan
    pred.to_csv(tmp_path / "p.tsv", sep="\t", index=False)
    np.savez(tmp_path / "p.npz", variant_id=pred.variant_id.to_numpy(str), pred_l2=pred.pred_l2.to_numpy())
    s_file, sum_file = qtl.evaluate_predictions(url, table, tmp_path / "p.tsv")
    used = scores.iloc[1:].dropna(subset=["obs_l2", "pred_l2"])
    assert sum_file["n"] == len(used) and sum_file["left_out"]["not_predicted"] == 1
    assert sum_file["pearson_r"] == pytest.approx(np.corrcoef(used.pred_l2, used.obs_l2)[0, 1])
    rc, out = _cli(["-q", "evaluate", "qtl", url, _write(table, tmp_path),
                    "--predictions", tmp_path / "p.npz", "-o", tmp_path / "o"])
    assert rc == 0, out
    import json
    assert json.loads((tmp_path / "o" / "qtl_summary.json").read_text())["pearson_r"] == \
        pytest.approx(sum_file["pearson_r"])


def _write(table, tmp_path):
    path = tmp_path / "qtls.tsv"
    table.to_csv(path, sep="\t", index=False)
    return path


def test_no_effect_threshold_is_a_parameter(qtl_store):
    url, table = qtl_store
    scores, s0 = qtl.evaluate_store(url, table, MotifPredictor(L, O))
    used = scores.dropna(subset=["obs_l2", "pred_l2"])
    tol = float(np.median(used.pred_l2))
    _, s1 = qtl.evaluate_store(url, table, MotifPredictor(L, O), no_effect_tol=tol)
    assert s1["share_no_effect"] == pytest.approx(np.mean(used.pred_l2 <= tol))
    assert s1["no_effect_definition"] == f"pred_l2 <= {tol:g}"
    assert s0["no_effect_definition"] == "pred_l2 <= 1e-06"


def test_load_qtls_real_table():
    t = qtl.load_qtls(real_data("qtl", "H3K27ac_hQTL_Grubert2015_hg19.vcf"))
    assert len(t) == 2452 and list(t.columns) == list(qtl.QTL_COLUMNS)
    assert t.loc[0, "variant_id"] == "rs138882270" and t.loc[0, "pos"] == 944956
    assert t.loc[0, "effect"] == pytest.approx(2.005329779) and (t.kind == "ti").all()


def test_load_qtls_errors(tmp_path):
    (tmp_path / "x.tsv").write_text("a\tb\n1\t2\n")
    with pytest.raises(InputError, match="unrecognised"):
        qtl.load_qtls(tmp_path / "x.tsv")
    (tmp_path / "y.tsv").write_text("variant_id\tchrom\tpos\tref\talt\nv\tchr1\t5\tAT\tA\n")
    with pytest.raises(InputError, match="biallelic SNPs"):
        qtl.load_qtls(tmp_path / "y.tsv")


def test_simulated_cohort_genotypes_match_truth(sim, store):
    """The simulator's truth counts genotype groups from the VCF calls: genotypes read from the
    VCF must match exactly; from the store, a missing call reads as the reference (the build
    writes the reference there), so only those QTLs may gain hom-ref individuals."""
    truth = pd.read_csv(sim.truth_dir / "qtls.tsv", sep="\t", dtype={"locus_id": str})
    snps = pd.read_csv(sim.truth_dir / "snps.tsv", sep="\t")[["variant_id", "n_missing"]]
    truth = truth.merge(snps, on="variant_id")
    pred = MotifPredictor(1000, 500)
    from_vcf, summary = qtl.evaluate_store(store, sim.truth_dir / "qtls.tsv", pred, vcf=sim.vcf)
    from_store, _ = qtl.evaluate_store(store, sim.truth_dir / "qtls.tsv", pred)
    for scores in (from_vcf, from_store):
        merged = truth.merge(scores, on=["variant_id", "kind"], suffixes=("_truth", ""))
        assert len(merged) == len(truth) > 0
        assert (merged["locus_id_truth"] == merged["locus_id"]).all()
        exact = merged if scores is from_vcf else merged[merged.n_missing == 0]
        for k in ("n_homref", "n_het", "n_homalt"):
            np.testing.assert_array_equal(exact[f"{k}_truth"], exact[k])
    gained = merged.n_homref - merged.n_homref_truth
    assert ((gained >= 0) & (gained <= merged.n_missing)).all()
    scored = from_vcf.dropna(subset=["obs_l2", "pred_l2"])
    assert summary["n"] == len(scored) > 0 and np.isfinite(summary["pearson_r"])


def test_cli_qtl_on_simulated_store(sim, store, tmp_path):
    """`clipstore evaluate qtl`: leakage-free composite from saved models, files written."""
    pytest.importorskip("tensorflow")
    import json

    from click.testing import CliRunner

    from clipstore.cli import cli
    from trainer.model import build_model

    p = tmp_path / "m.keras"
    build_model(1000, 1000, conv_filters=(4, 4), filters=4, n_dilated=1).save(p)
    out = tmp_path / "out"
    args = ["-q", "evaluate", "qtl", store, str(sim.truth_dir / "qtls.tsv"), "--ensemble", str(p),
            "--replicate", f"2={p}", "-o", str(out)]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    scores = pd.read_csv(out / "qtl_scores.tsv", sep="\t")
    want = {0: "ensemble", 2: "replicate_2"}
    assert (scores["model"] == [want.get(f, "none") for f in scores["fold"]]).all()
    summary = json.loads((out / "qtl_summary.json").read_text())
    used = scores[scores.model != "none"].dropna(subset=["obs_l2", "pred_l2"])
    assert summary["n"] == len(used) > 0
    assert (out / "qtl_scatter.png").exists()


def test_vcf_genotypes_with_and_without_index(sim, store, tmp_path):
    import shutil

    from clipstore import schema

    root = schema.open_store(store)
    located = qtl.locate(qtl.load_qtls(sim.truth_dir / "qtls.tsv"), root)
    plain = tmp_path / "copy.vcf.gz"
    shutil.copy(sim.vcf, plain)                       # no .tbi beside it: read once in full
    ids = root["individual_id"][:].tolist()
    a = qtl.genotypes_from_vcf(sim.vcf, located, ids)
    b = qtl.genotypes_from_vcf(plain, located, ids)
    np.testing.assert_array_equal(a, b)
    assert np.isfinite(a).mean() > 0.9
    missing = qtl.genotypes_from_vcf(sim.vcf, located, ids[:2] + ["nobody"])
    assert np.isnan(missing[:, 2]).all()


def test_real_chr22_genotypes_store_equals_vcf(tmp_path):
    """Real 1000 Genomes calls (contig `22`, region-named FASTA slice): genotypes read back from
    the built store's two-hot sequences equal those from the VCF for every SNP in a locus."""
    import cyvcf2

    from clipstore import schema
    from clipstore.build import build
    from tests.test_build_real import _inputs

    inp = _inputs(tmp_path, "beagle_test_chr22_PHASED_by_beagle5.4.vcf.gz")
    url = str(tmp_path / "real.zarr")
    build(str(inp["config"]), url)
    root = schema.open_store(url)
    rows = [{"variant_id": r.ID or f"22:{r.POS}", "chrom": "chr22", "pos": r.POS, "ref": r.REF,
             "alt": r.ALT[0], "locus_id": None, "kind": "ti", "effect": 0.0}
            for r in cyvcf2.VCF(str(inp["vcf"]))
            if len(r.ALT) == 1 and len(r.REF) == 1 and len(r.ALT[0]) == 1]
    located = qtl.locate(pd.DataFrame(rows), root)
    assert len(located) > 20
    ids = root["individual_id"][:].tolist()
    from_store = qtl.genotypes_from_store(root, located)
    from_vcf = qtl.genotypes_from_vcf(inp["vcf"], located, ids)
    assert np.isfinite(from_vcf).all()
    np.testing.assert_array_equal(from_store, from_vcf)
    L_in = root.attrs["clipstore"]["input_length"]
    scores, summary = qtl.evaluate_store(url, located.drop(columns=["locus", "offset", "fold"]),
                                         MotifPredictor(L_in, 100))
    assert len(scores) == len(located)
    # SNPs in the jitter margins of the stored window are outside the model's input
    sl = qtl.input_slice(schema.store_info(root), L_in)
    outside = (scores.offset < sl.start) | (scores.offset >= sl.stop)
    assert outside.any() and (scores.model[outside] == "outside_input").all()
    assert summary["left_out"]["outside_input"] == int(outside.sum())
    assert summary["n"] == scores[~outside].dropna(subset=["obs_l2", "pred_l2"]).shape[0] > 0
