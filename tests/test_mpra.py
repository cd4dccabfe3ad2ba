"""MPRA: auPRC and PR curves against scikit-learn, the bootstrap against an independent loop,
reporter windows against the real backbone file, parsers on the real MPRA tables."""
from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest
from scipy.stats import pearsonr, ttest_1samp
from sklearn.metrics import average_precision_score, precision_recall_curve

from clipstore.errors import InputError
from evaluation import mpra
from evaluation.baseline import MotifPredictor
from evaluation.predictor import encode_haploid
from tests.conftest import real_data


@pytest.mark.parametrize("seed", range(6))
def test_average_precision_and_curve_match_sklearn(seed):
    rng = np.random.default_rng(seed)
    y = rng.random(80) < 0.3
    s = rng.integers(0, 12, 80).astype(float) if seed % 2 else rng.random(80)   # ties on odd
    assert mpra.average_precision(y, s) == pytest.approx(average_precision_score(y, s), abs=1e-12)
    p, r, thr = mpra.pr_curve(y, s)
    sp, sr, st = precision_recall_curve(y, s)
    np.testing.assert_allclose(p[::-1], sp)
    np.testing.assert_allclose(r[::-1], sr)
    np.testing.assert_allclose(thr[::-1], st)


def test_bootstrap_matches_independent_loop():
    rng = np.random.default_rng(1)
    y = rng.random(60) < 0.4
    a = y + rng.normal(0, 0.8, 60)
    b = rng.normal(0, 1, 60)
    res = mpra.bootstrap_delta(y, a, b, n_boot=200, seed=7)
    again = np.random.default_rng(7)
    want = []
    for _ in range(200):
        i = again.integers(0, 60, 60)
        if y[i].any() and not y[i].all():
            want.append(average_precision_score(y[i], a[i]) - average_precision_score(y[i], b[i]))
    np.testing.assert_allclose(res["deltas"], want, atol=1e-12)
    want = np.array(want)
    tail = min((want <= 0).sum(), (want >= 0).sum())
    assert res["p_value"] == pytest.approx(min(1, 2 * (tail + 1) / (len(want) + 1)))
    assert res["delta"] == pytest.approx(average_precision_score(y, a) - average_precision_score(y, b))
    assert res["p_value"] < 0.05 and res["ci_low"] > 0          # a clearly beats noise
    same = mpra.bootstrap_delta(y, a, a, n_boot=50)
    assert same["p_value"] == 1 and same["delta"] == 0


def _fasta_records(path):
    out, name = {}, None
    for line in open(path):
        if line.startswith(">"):
            name = line[1:].split()[0]
            out[name] = ""
        else:
            out[name] += line.strip()
    return out


def test_shipped_backbone_equals_source_and_window_layout():
    src = _fasta_records(real_data("backbone", "pMPRAv3_fragments.fa"))
    bb = mpra.load_backbone()
    assert bb.upstream == (src["clipnet_k562_procapnet_5prime"] + src["clipnet_k562_Sfi1_5prime"]).upper()
    assert bb.downstream == src["clipnet_k562_minP_GFP"].upper()
    oligo = "ACGT" * 50
    w = mpra.reporter_window(oligo, 1000)
    assert w == (src["clipnet_k562_Sfi1_5prime"] + oligo + src["clipnet_k562_minP_GFP"][:470]).upper()
    small = mpra.reporter_window(oligo, 300)
    assert small[50:250] == oligo and len(small) == 300
    long = mpra.reporter_window(oligo, 2000)
    assert len(long) == 2000 and long.endswith(bb.downstream) and oligo in long
    with pytest.raises(InputError):
        mpra.reporter_window(oligo, 150)


def _table(n=40, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    chroms = ["chr9", "chr1", "chr20", "chr5"]
    for i in range(n):
        ref = "".join(rng.choice(list("ACGT"), 200))
        k = 97
        ref = ref[:k] + ("TATAAA" if i % 2 else "GGGCGG") + ref[k + 6:]
        alt = ref[:k + 2] + ("C" if ref[k + 2] != "C" else "G") + ref[k + 3:]
        rows.append({"variant_id": f"v{i}", "chrom": chroms[i % 4], "pos": 1000 + i,
                     "oligo_ref": ref, "oligo_alt": alt if i % 3 else ref,
                     "log2fc_observed": rng.normal(0, 1), "emvar": int(i % 3 != 0 and i % 5 != 0),
                     "active": int(i % 7 != 0)})
    return pd.DataFrame(rows)


def test_predict_effects_equals_direct_prediction():
    t = _table()
    pred = MotifPredictor(input_length=400, output_length=100)
    eff = mpra.predict_effects(t, pred, batch_size=7)
    for i in (1, 2, 3):
        x = encode_haploid([mpra.reporter_window(t.oligo_ref[i], 400),
                            mpra.reporter_window(t.oligo_alt[i], 400)])
        _, q = pred(x)
        assert eff[i] == pytest.approx(np.log2((q[0] + 1e-6) / (q[1] + 1e-6)), rel=1e-5)
    assert np.all(eff[t.oligo_ref == t.oligo_alt] == 0)
    assert np.any(eff != 0)


def test_evaluate_against_sklearn_and_test_fold():
    t = _table()
    rng = np.random.default_rng(3)
    e1, e2 = rng.normal(0, 1, len(t)), rng.normal(0, 1, len(t))
    res = mpra.evaluate(t, {"a": e1, "b": e2}, n_boot=100)
    keep = (t.emvar == 1) | (t.active == 1)
    y = t.emvar[keep].to_numpy()
    assert res["models"]["a"]["auprc"] == pytest.approx(average_precision_score(y, e1[keep] ** 2))
    assert res["models"]["a"]["pearson_r"] == pytest.approx(pearsonr(e1, t.log2fc_observed)[0])
    em = t.emvar.to_numpy() == 1
    assert res["models"]["b"]["sign_mismatches"] == int(np.sum(np.sign(e2[em]) != np.sign(t.log2fc_observed[em])))
    assert res["comparisons"][0]["delta"] == pytest.approx(
        res["models"]["a"]["auprc"] - res["models"]["b"]["auprc"])
    test = mpra.evaluate(t, {"a": e1}, test_fold_only=True)
    on_test = t.chrom.isin(["chr9", "chr20"]).to_numpy()      # fold 0: chr9, 13, 20, 21
    assert test["n_variants"] == on_test.sum()
    k2 = (t.emvar == 1) | (t.active == 1)
    y2 = t.emvar[k2 & on_test].to_numpy()
    assert test["models"]["a"]["auprc"] == pytest.approx(average_precision_score(y2, e1[k2 & on_test] ** 2))


def test_load_table_roundtrip_and_errors(tmp_path):
    t = _table(5)
    t.to_csv(tmp_path / "m.tsv", sep="\t", index=False)
    back = mpra.load_table(tmp_path / "m.tsv")
    pd.testing.assert_frame_equal(back[list(mpra.TABLE_COLUMNS)], t[list(mpra.TABLE_COLUMNS)], check_dtype=False)
    t.drop(columns="emvar").to_csv(tmp_path / "bad.tsv", sep="\t", index=False)
    with pytest.raises(InputError, match="emvar"):
        mpra.load_table(tmp_path / "bad.tsv")
    t.assign(oligo_ref="ACGX").to_csv(tmp_path / "bad2.tsv", sep="\t", index=False)
    with pytest.raises(InputError, match="row 2"):
        mpra.load_table(tmp_path / "bad2.tsv")


def test_load_tewhey_real():
    path = real_data("mpra", "tewhey2016_NA12878_7.5k_allelic_counts_from_mpraSetAllelicExample.tsv.gz")
    t = mpra.load_tewhey(path)
    raw = pd.read_csv(gzip.open(path), sep="\t")
    assert len(t) == len(raw) == 3746
    assert t["variant_id"].tolist() == raw["snp_id"].tolist()
    assert t["log2fc_observed"].notna().all()
    assert 0 < t["emvar"].sum() < t["active"].sum() < len(t)
    assert (t.loc[t.emvar == 1, "active"] == 1).all()
    # independent recomputation for one variant
    i = 10
    cpm = lambda c: raw[c] / raw[c].sum() * 1e6
    skew = [np.log2((cpm(f"RNA_allele_A_{r}")[i] + 1) / (cpm(f"DNA_allele_A_{r}")[i] + 1))
            - np.log2((cpm(f"RNA_allele_B_{r}")[i] + 1) / (cpm(f"DNA_allele_B_{r}")[i] + 1))
            for r in range(1, 6)]
    assert t["log2fc_observed"][i] == pytest.approx(np.mean(skew))
    assert t["p_skew"][i] == pytest.approx(ttest_1samp(skew, 0).pvalue)
    assert t.loc[t.variant_id == "chr16:18532017", "pos"].item() == 18532017


def test_load_ulirsch_real():
    """Replicate-level calls on the real excerpt: not 0 active / 0 emVars (the old barcode-level
    tests called none); the emVar's numbers recomputed independently."""
    path = real_data("mpra", "umpra_example_Ulirsch2016.tsv.gz")
    t = mpra.load_ulirsch(path)
    raw = pd.read_csv(gzip.open(path), sep="\t", dtype={"variant_id": str})
    assert len(t) == raw["variant_id"].nunique() == 25
    assert (t["n_barcodes_ref"] + t["n_barcodes_alt"]).sum() == len(raw)
    assert t.loc[0, "chrom"] == raw["variant_id"][0].split("_")[0]
    assert t["log2fc_observed"].notna().all()
    assert t["active"].sum() >= 1 and t["emvar"].sum() >= 1
    assert (t.loc[t.emvar == 1, "active"] == 1).all()
    vid = t.loc[t.emvar == 1, "variant_id"].iloc[0]
    dna = [c for c in raw if c.startswith("DNA")]
    rna = [c for c in raw if c.startswith("RNA")]
    tot = raw.groupby(["variant_id", "allele"])[dna + rna].sum()
    cpm = tot / tot.sum() * 1e6
    act = {a: np.log2((cpm.loc[(vid, a), rna].to_numpy(float) + 1) /
                      (cpm.loc[(vid, a), dna].to_numpy(float).mean() + 1)) for a in ("ref", "alt")}
    row = t.set_index("variant_id").loc[vid]
    assert row.log2fc_observed == pytest.approx(np.mean(act["ref"] - act["alt"]))
    assert row.p_skew == pytest.approx(ttest_1samp(act["ref"] - act["alt"], 0).pvalue)


def test_hand_checked_metrics_stay():
    """Regression values worked out by hand (were the hand-written versions' tests)."""
    assert mpra.average_precision([1, 0, 1, 0], [0.9, 0.8, 0.7, 0.1]) == pytest.approx(1 / 2 + 1 / 2 * 2 / 3)
    assert mpra.average_precision([1, 0, 1], [0.5, 0.5, 0.2]) == pytest.approx(0.5 * 0.5 + 0.5 * 2 / 3)
    assert np.isnan(mpra.average_precision([0, 0], [0.1, 0.2]))
    p, r, thr = mpra.pr_curve([1, 0, 1], [0.5, 0.5, 0.2])
    np.testing.assert_allclose(p, [1, 0.5, 2 / 3])
    np.testing.assert_allclose(r, [0, 0.5, 1])
    np.testing.assert_allclose(thr, [0.5, 0.2])
    from evaluation.mpra_tables import bh
    np.testing.assert_allclose(bh(np.array([0.01, 0.04, 0.03, 0.2, np.nan])),
                               [0.04, 0.16 / 3, 0.16 / 3, 0.2, np.nan])


def test_cli_mpra_with_precomputed_effects(tmp_path):
    """Any tool's effects as a TSV: numbers, figures and the report all come out."""
    from click.testing import CliRunner

    from clipstore.cli import cli

    t = _table(60)
    t.to_csv(tmp_path / "m.tsv", sep="\t", index=False)
    rng = np.random.default_rng(5)
    eff = pd.DataFrame({"variant_id": t.variant_id[::-1], "toolA": rng.normal(size=60),
                        "toolB": rng.normal(size=60)})
    eff.to_csv(tmp_path / "e.tsv", sep="\t", index=False)
    out = tmp_path / "out"
    res = CliRunner().invoke(cli, ["evaluate", "mpra", str(tmp_path / "m.tsv"), "--effects",
                                   str(tmp_path / "e.tsv"), "--n-boot", "50", "-o", str(out)])
    assert res.exit_code == 0, res.output
    import json
    models = {r["model"]: r for r in json.loads((out / "mpra_models.json").read_text())}
    keep = ((t.emvar == 1) | (t.active == 1)).to_numpy()
    a = eff.set_index("variant_id").loc[t.variant_id, "toolA"].to_numpy()
    assert models["toolA"]["auprc"] == pytest.approx(average_precision_score(t.emvar[keep], a[keep] ** 2))
    for stem in ("mpra_pr", "mpra_delta_toolA_vs_toolB", "mpra_scatter_toolB"):
        assert (out / f"{stem}.png").exists() and (out / f"{stem}.svg").exists()
    res = CliRunner().invoke(cli, ["evaluate", "report", str(out)])
    assert res.exit_code == 0 and "toolA" in (out / "report.md").read_text()
    eff.head(10).to_csv(tmp_path / "short.tsv", sep="\t", index=False)
    res = CliRunner().invoke(cli, ["evaluate", "mpra", str(tmp_path / "m.tsv"), "--effects",
                                   str(tmp_path / "short.tsv")])
    assert res.exit_code != 0 and "have no prediction" in str(res.exception)


def test_simulated_mpra_table(sim):
    """The simulator's truth/mpra.tsv parses, predicts through the reporter and evaluates."""
    t = mpra.load_table(sim.truth_dir / "mpra.tsv")
    assert len(t) > 0 and (t.oligo_ref.str.len() == 200).all()
    diff = [sum(a != b for a, b in zip(r, s)) for r, s in zip(t.oligo_ref, t.oligo_alt)]
    assert set(diff) == {1}
    eff = mpra.predict_effects(t, MotifPredictor(1000, 500))
    res = mpra.evaluate(t, {"motif": eff, "zero_noise": np.random.default_rng(0).normal(size=len(t))},
                        n_boot=100, test_fold_only=True)
    on_test = mpra.test_fold_rows(t)
    assert res["n_variants"] == on_test.sum()
    assert res["n_emvar"] == int(t.emvar[on_test].sum())
    keep = ((t.emvar == 1) | (t.active == 1)).to_numpy() & on_test
    assert t.emvar[keep].any()
    assert res["models"]["motif"]["auprc"] == pytest.approx(
        average_precision_score(t.emvar[keep], eff[keep] ** 2))


def _run(args):
    """`python -m clipstore ARGS` in a real process."""
    import subprocess
    import sys

    p = subprocess.run([sys.executable, "-m", "clipstore", *map(str, args)], capture_output=True,
                       text=True, timeout=300)
    return p.returncode, p.stdout + p.stderr


def test_cli_tewhey_counts_with_predictions_from_files(tmp_path):
    """The real Tewhey allelic count table through the CLI, scored against another tool's
    predictions keyed by variant, as TSV and as .npz: the same numbers either way."""
    import json

    path = real_data("mpra", "tewhey2016_NA12878_7.5k_allelic_counts_from_mpraSetAllelicExample.tsv.gz")
    calls = mpra.load_tewhey(path)
    rng = np.random.default_rng(0)
    tool = calls["log2fc_observed"].to_numpy() + rng.normal(0, 0.5, len(calls))   # a decent tool
    noise = rng.normal(0, 1, len(calls))
    eff = pd.DataFrame({"variant_id": calls.variant_id, "tool": tool, "noise": noise}).iloc[::-1]
    eff.to_csv(tmp_path / "e.tsv", sep="\t", index=False)
    np.savez(tmp_path / "e.npz", variant_id=eff.variant_id.to_numpy(str), tool=eff.tool.to_numpy(),
             noise=eff.noise.to_numpy())
    got = {}
    for f in ("e.tsv", "e.npz"):
        rc, out = _run(["evaluate", "mpra", path, "--predictions", tmp_path / f, "--n-boot", "20",
                        "-o", tmp_path / f"o_{f}"])
        assert rc == 0, out
        got[f] = {r["model"]: r for r in json.loads((tmp_path / f"o_{f}" / "mpra_models.json").read_text())}
    assert got["e.tsv"] == got["e.npz"]
    keep = ((calls.emvar == 1) | (calls.active == 1)).to_numpy()
    assert got["e.tsv"]["tool"]["auprc"] == pytest.approx(
        average_precision_score(calls.emvar[keep], tool[keep] ** 2))
    assert got["e.tsv"]["tool"]["auprc"] > got["e.tsv"]["noise"]["auprc"]
    rc, out = _run(["evaluate", "mpra", path, "--model", "m=motif"])   # no oligos, no FASTA
    assert rc == 2 and "--fasta" in out


def _chr20_emvar_table(tmp_path):
    """An emVar table with coordinates: the 59 real chr20 Grubert SNPs (real REF/ALT), with
    made-up emVar/active labels and log2FC (no real chr20 MPRA table with alleles is shipped)."""
    q = pd.read_csv(real_data("qtl", "H3K27ac_hQTL_Grubert2015_hg19.vcf"), sep="\t")
    q = q[q.Chr == "chr20"].reset_index(drop=True)
    rng = np.random.default_rng(1)
    t = pd.DataFrame({"SNP": q.ID, "CHR": q.Chr, "POS": q.Pos, "REF": q.Ref, "ALT": q.Alt,
                      "log2FC": q.Beta, "emVar": (np.arange(len(q)) % 3 == 0).astype(int),
                      "Active": rng.integers(0, 2, len(q))})
    t.to_csv(tmp_path / "emvars.tsv", sep="\t", index=False)
    return t


def test_cli_mpra_reporters_built_from_coordinates(tmp_path):
    """Coordinates, no oligos: each allele's 200 bp is cut from the chr20 FASTA, inserted
    upstream of minP in pMPRAv3 and predicted; equals predicting independently cut oligos."""
    import json

    from evaluation.score import Reference

    fa = str(real_data("chr20_hg19", "20.fa.gz"))
    t = _chr20_emvar_table(tmp_path)
    rc, out = _run(["evaluate", "mpra", tmp_path / "emvars.tsv", "--fasta", fa, "--model",
                    "motif=motif:1000:500", "--n-boot", "20", "-o", tmp_path / "o"])
    assert rc == 0, out
    got = pd.read_csv(tmp_path / "o" / "mpra_effects.tsv", sep="\t")
    assert got.variant_id.tolist() == t.SNP.tolist()
    ref = Reference(fa)
    oligos_r, oligos_a = [], []
    for r in t.itertuples():
        s = ref.fetch("20", r.POS - 1 - 100, r.POS - 1 + 100)
        assert s[100] == r.REF
        oligos_r.append(s)
        oligos_a.append(s[:100] + r.ALT + s[101:])
    want = mpra.predict_effects(pd.DataFrame({"oligo_ref": oligos_r, "oligo_alt": oligos_a}),
                                MotifPredictor(1000, 500))
    np.testing.assert_allclose(got["motif"], want, rtol=1e-5, atol=1e-9)
    models = json.loads((tmp_path / "o" / "mpra_models.json").read_text())
    assert models[0]["model"] == "motif" and np.isfinite(models[0]["auprc"])
    # a REF that disagrees with the FASTA is a clear error naming the variant
    t.loc[3, "REF"] = "A" if t.loc[3, "REF"] != "A" else "C"
    t.to_csv(tmp_path / "bad.tsv", sep="\t", index=False)
    rc, out = _run(["evaluate", "mpra", tmp_path / "bad.tsv", "--fasta", fa, "--model", "m=motif"])
    assert rc == 2 and t.SNP[3] in out and "disagrees with the FASTA" in out


def test_effects_only_needs_no_oligo_columns(tmp_path):
    t = _chr20_emvar_table(tmp_path)
    pd.DataFrame({"variant_id": t.SNP, "x": np.linspace(-1, 1, len(t))}).to_csv(
        tmp_path / "e.tsv", sep="\t", index=False)
    rc, out = _run(["evaluate", "mpra", tmp_path / "emvars.tsv", "--effects", tmp_path / "e.tsv",
                    "--n-boot", "10", "-o", tmp_path / "o"])
    assert rc == 0, out
    assert (tmp_path / "o" / "mpra_pr.png").exists()
