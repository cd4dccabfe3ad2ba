"""`clipstore demo --quick` end to end: the real CLI in a subprocess, then its outputs are checked
(report, figures with their numbers, results.json) and one headline number is recomputed
independently from the saved model and the store. The numbers of a --quick run are not
meaningful (tiny model, a few steps); the default plan is what `make demo` runs."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import pearsonr

pytestmark = pytest.mark.slow


def run_cli(*args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run([sys.executable, "-m", "clipstore", *args], capture_output=True,
                          text=True, timeout=timeout, env=env)


def test_quick_demo_prints_no_library_chatter(quick_demo):
    """Only clipstore's own lines: e.g. numexpr's INFO thread-count notice (pandas imports it
    once blosc2 is installed) stays out."""
    err = (quick_demo / "stderr.txt").read_text()
    assert "NumExpr" not in err and "oneDNN" not in err, err[-2000:]


def test_quick_demo_writes_report_figures_and_numbers(quick_demo):
    out = quick_demo
    stdout = (out / "stdout.txt").read_text()
    res = json.loads((out / "results.json").read_text())
    names = [r["model"] for r in res["table"]]
    assert names == ["personalized", "reference", "null_personalized", "null_reference",
                     "mechanism_personalized", "mechanism_reference", "n2_draw0"]
    libs = {r["model"]: r["libraries"] for r in res["table"]}
    assert libs["n2_draw0"] == 2 and libs["personalized"] == 7
    seeds = {r["model"]: r["seeds"] for r in res["table"]}
    assert seeds["n2_draw0"] == 1 and all(seeds[n] == 2 for n in names[:6])
    assert "n2_draw0 (single run)" in stdout
    # the printed table and verdict are the saved ones
    assert "personalized" in stdout and res["verdict"]["text"] in stdout
    assert res["verdict"]["text"].split(" ")[0] in ("HOLDS", "DOES", "UNDECIDED")
    assert set(res["timings"]) >= {"simulate", "build", "train", "evaluate", "report"}
    assert set(res["cpu_timings"]) == set(res["timings"]) and res["cpu_seconds"] > 0
    assert set(res["regimes"]) == {"main", "null", "mechanism"}
    assert "Calibration" in stdout and "null cohort: expected no gain" in stdout
    # every member of every condition was really trained with what its name says, each
    # with its own seed, on its own cohort's store
    for name in names:
        members = sorted((out / "models" / name).glob("seed*/manifest.json"))
        assert len(members) == seeds[name]
        used = set()
        for f in members:
            man = json.loads(f.read_text())
            assert man["selection"]["masked"] is name.endswith("reference")
            assert man["selection"]["n_libraries"] == libs[name]
            assert (f.parent / "model.keras").exists()
            regime = name.split("_")[0] if name.startswith(("null", "mechanism")) else ""
            assert man["config"]["store"].endswith(f"store{'_' + regime if regime else ''}.zarr")
            used.add(man["config"]["seed"])
        assert len(used) == seeds[name]
    # report: every figure it links exists, with the numbers it plots beside it
    report = (out / "report" / "report.md").read_text()
    for stem in ("subsampling_qtl_r_obs", "subsampling_profile_r_median",
                 "qtl_scatter_personalized", "qtl_scatter_reference",
                 "qtl_scatter_null_personalized", "qtl_scatter_mechanism_reference", "mpra_pr"):
        assert f"({stem}.png)" in report
        assert (out / "report" / f"{stem}.png").stat().st_size > 1000
        assert (out / "report" / f"{stem}.svg").exists()
        assert any((out / "report" / f"{stem}{ext}").exists() for ext in (".json", ".csv"))
    assert (out / "report" / "report.html").exists()


def test_quick_demo_numbers_match_an_independent_recomputation(quick_demo):
    """Median per-example profile Pearson r of the personalized model on test fold 0, computed
    here with scipy from the saved model and the store, equals the reported one."""
    from clipstore.reader import StoreDataset
    from trainer.predict import load_predictor

    res = json.loads((quick_demo / "results.json").read_text())
    reported = {r["model"]: r for r in res["table"]}["personalized"]["profile_r_median"]
    from trainer.predict import Predictor

    members = [load_predictor(str(f)) for f in
               sorted((quick_demo / "models" / "personalized").glob("seed*"))]
    assert len(members) == 2
    pred = Predictor([m.models[0] for m in members])      # the ensemble: members averaged
    ds = StoreDataset.open(str(quick_demo / "store.zarr")).with_rpm(True)
    ds = ds.with_loci(ds.meta.fold == 0)
    rs = []
    for b in ds.batches(64, shuffle=False):
        p, _ = pred(b.x)
        for a, o in zip(p, b.profile):
            if np.ptp(a) > 0 and np.ptp(o) > 0:
                rs.append(pearsonr(a, o)[0])
    assert len(rs) > 10
    assert reported == pytest.approx(float(np.median(rs)), abs=1e-4)


def test_quick_demo_scores_qtls_and_oligos_only_on_held_out_folds(quick_demo):
    """One replicate validates on fold 1 and never sees fold 0: QTLs elsewhere would leak."""
    for name in ("personalized", "reference", "null_personalized", "mechanism_reference"):
        s = pd.read_csv(quick_demo / "eval" / f"qtl_{name}.csv")
        assert set(s["fold"]) <= {0, 1}


def test_quick_demo_resumes_without_retraining_and_refuses_another_plan(quick_demo):
    logs = sorted((quick_demo / "models").glob("*/seed*/log.csv"))
    assert len(logs) == 13
    before = {p: p.stat().st_mtime_ns for p in logs}
    again = run_cli("demo", "--quick", "--out", str(quick_demo))
    assert again.returncode == 0, again.stderr[-3000:]
    assert "done already" in again.stderr
    assert {p: p.stat().st_mtime_ns for p in logs} == before
    other = run_cli("demo", "--out", str(quick_demo))           # the default plan
    assert other.returncode == 2 and "another plan" in other.stderr
    reseeded = run_cli("demo", "--quick", "--train-seed", "1", "--out", str(quick_demo))
    assert reseeded.returncode == 2 and "another plan or seed" in reseeded.stderr


def test_full_plan_is_the_papers_schedule(tmp_path):
    """--full (not run here: it needs a GPU for hours) asks for 9-fold ensembles, 5 draws of
    n = 5..30 libraries, CLIPNET's model and optimiser settings — checked on the configs it
    would hand the trainer."""
    from experiment.plans import PLANS, plan_runs, train_config

    plan = PLANS["full"]
    runs = plan_runs(plan, n_libraries=67, n_individuals=58)
    sub = [r for r in runs if r.kind == "subsampled"]
    assert [r.name for r in runs[:2]] == ["personalized", "reference"]
    assert sorted({r.n_libraries for r in sub}) == [5, 10, 15, 20, 30] and len(sub) == 25
    cfgs = [train_config(plan, r, "store.zarr", tmp_path, r.seeds[0]) for r in runs]
    assert all(c.ensemble == list(range(1, 10)) and c.model == "clipnet" for c in cfgs)
    assert all((c.batch_size, c.learning_rate, c.patience, c.max_epochs) == (256, 1e-3, 10, 200)
               and c.steps_per_epoch is None and c.loss_lambda == 1 / 500 for c in cfgs)
    assert [c.masked for c in cfgs[:2]] == [False, True]
    from trainer.train import expand
    assert len(expand(cfgs[0])) == 9                 # one model per replicate fold


def _genotype_z(store: str, qtls: Path, trans_sd: float, replicate_sd: float) -> np.ndarray:
    """Per QTL: hom-alt minus hom-ref mean log RPM total (output window), in units of its
    standard error under the null's noise model — Poisson counts times the individual x locus
    and library x locus log-normal factors the simulator draws independently of genotype
    (Var log ~ trans_sd^2 + replicate_sd^2 + 1/count)."""
    from clipstore import schema
    from evaluation import qtl

    root = schema.open_store(store)
    located = qtl.locate(qtl.load_qtls(qtls), root)
    g = qtl.genotypes_from_store(root, located)
    out_len = int(root.attrs["clipstore"]["output_length"])
    rpm = qtl.observed_tracks(store, located["locus"].to_numpy(), out_len, rpm=True)
    raw = qtl.observed_tracks(store, located["locus"].to_numpy(), out_len, rpm=False)
    z = []
    for j, locus in enumerate(located["locus"]):
        tot, cnt = rpm[int(locus)].sum(1), raw[int(locus)].sum(1)
        ref, alt = (g[j] == 0) & np.isfinite(tot), (g[j] == 2) & np.isfinite(tot)
        if not ref.any() or not alt.any():
            continue
        y = np.log(tot + 1e-9)
        v = trans_sd ** 2 + replicate_sd ** 2 + 1 / max(np.nanmean(cnt), 1.0)
        z.append((y[alt].mean() - y[ref].mean()) / np.sqrt(v * (1 / alt.sum() + 1 / ref.sum())))
    return np.asarray(z)


def test_quick_demo_null_control_is_wired(quick_demo):
    """The null cohort is the main one with every variant effect zeroed: same genome and
    genotypes, truth tables saying every effect is 0 over the same QTL list, and observed
    genotype groups that differ no more than the noise the simulator draws independently of
    genotype (Poisson counts and log-normal individual/library factors) — while in the main
    cohort they do. The verdict on it is reported beside the main one."""
    out = quick_demo
    main, null = out / "sim", out / "sim_null"
    assert (main / "cohort.vcf.gz").read_bytes() == (null / "cohort.vcf.gz").read_bytes()
    planted = json.loads((null / "truth" / "planted.json").read_text())
    assert planted["params"]["variant_effects"] is False
    snps = pd.read_csv(null / "truth" / "snps.tsv", sep="\t")
    assert len(snps) and (snps["true_log2_quantity_effect"] == 0).all()
    assert (snps["true_directionality_effect"] == 0).all()
    q_main = pd.read_csv(main / "truth" / "qtls.tsv", sep="\t")
    q_null = pd.read_csv(null / "truth" / "qtls.tsv", sep="\t")
    assert len(q_null) >= 20 and (q_null["true_effect"] == 0).all()
    assert q_null[["variant_id", "kind"]].equals(q_main[["variant_id", "kind"]])
    p = planted["params"]
    z_null = _genotype_z(str(out / "store_null.zarr"), null / "truth" / "qtls.tsv",
                         p["trans_sd"], p["replicate_sd"])
    z_main = _genotype_z(str(out / "store.zarr"), main / "truth" / "qtls.tsv",
                         p["trans_sd"], p["replicate_sd"])
    assert len(z_null) >= 10
    assert np.mean(z_null ** 2) < 2.0, z_null            # chi-square(1) mean is 1
    assert abs(np.mean(z_null)) < 3 / np.sqrt(len(z_null))
    assert np.mean(z_main ** 2) > 2 * np.mean(z_null ** 2)
    res = json.loads((out / "results.json").read_text())
    assert res["regimes"]["null"]["expect_holds"] is False
    v = res["regimes"]["null"]["verdict"]
    assert v["qtl_gain"]["replicates"] == [2, 2]
    assert "null" in (out / "report" / "report.md").read_text()


def test_ensemble_gain_ci_widens_with_replicate_spread():
    """The verdict's CI covers the spread between training replicates: the same QTL scores
    with members that disagree give a wider interval than members that agree, and with one
    member it reduces to the QTL bootstrap."""
    from experiment.verdict import ensemble_gain

    rng = np.random.default_rng(0)
    q, t = 150, 8
    truth = rng.gamma(2.0, 1.0, (q, t))
    obs = np.linalg.norm(truth + rng.normal(0, 0.5, (q, t)), axis=1)
    key = np.array([f"v{i}|ti" for i in range(q)])

    def members(spread: float, r: int = 3) -> dict:
        d = np.stack([truth + rng.normal(0, spread, (q, t)) for _ in range(r)])
        return {"diffs": d, "obs_l2": obs, "key": key}

    base = members(1.0)
    tight = ensemble_gain(members(1.0), base, seed=1)
    loose = ensemble_gain(members(4.0), base, seed=1)
    assert loose["ci_high"] - loose["ci_low"] > tight["ci_high"] - tight["ci_low"]
    one = ensemble_gain(members(1.0, r=1), members(1.0, r=1), seed=1)
    assert one["replicates"] == [1, 1] and one["ci_low"] < one["delta"] < one["ci_high"]
    # the point estimate is the ensemble's: norm of the members' mean difference
    from scipy.stats import pearsonr
    a, b = members(1.0), members(2.0)
    g = ensemble_gain(a, b, seed=1)
    ea, eb = (np.linalg.norm(x["diffs"].mean(0), axis=1) for x in (a, b))
    assert g["delta"] == pytest.approx(pearsonr(ea, obs)[0] - pearsonr(eb, obs)[0], abs=1e-9)


def test_record_writes_only_measured_runs(quick_demo, tmp_path):
    """experiment.record: bench JSON and README block from finished folders; a folder without
    results.json is listed as missing, never filled in."""
    from experiment.record import main as record

    readme = tmp_path / "README.md"
    readme.write_text("# x\n<!-- BEGIN demo -->\nSTALE-BLOCK\n<!-- END demo -->\n")
    out = tmp_path / "demo.json"
    record([str(quick_demo), str(tmp_path / "never_ran"), "--json", str(out),
            "--readme", str(readme)])
    rec = json.loads(out.read_text())
    res = json.loads((quick_demo / "results.json").read_text())
    assert rec["missing"] == [str(tmp_path / "never_ran")]
    assert list(rec["verdict_by_seed"]) == ["0"]
    assert rec["verdict_by_seed"]["0"] == res["verdict"]["text"]
    assert rec["null_control_holds"]["0"] is res["regimes"]["null"]["verdict"]["holds"]
    assert rec["mechanism_control_as_expected"]["0"] is res["regimes"]["mechanism"]["as_expected"]
    assert rec["minutes_pipeline"]["0"] == pytest.approx(res["wall_seconds"] / 60)
    text = readme.read_text()
    assert "STALE-BLOCK" not in text and "null_personalized" in text and "never_ran" in text


@pytest.mark.parametrize("ci, holds, phrase", [
    ((-0.10, 0.05), False, "includes 0"), ((-0.20, -0.01), False, "reference-trained ensemble"),
    ((0.01, 0.20), True, "HOLDS")])
def test_verdict_sentence_never_asserts_a_refuted_claim(ci, holds, phrase):
    """A DOES NOT HOLD sentence says what failed and does not restate the claim as if true."""
    from experiment.verdict import CLAIM, verdict

    def ev(prof: float) -> dict:
        return {"crossloci": {"profile_r_median": prof, "quantity_log_r": 0.8},
                "qtl": {"pearson_r": 0.3, "spearman_r": 0.3, "member_pearson_r": [0.3, 0.31],
                        "truth_r": {"ti": 0.1, "di": 0.2}}}

    v = verdict(ev(0.80), ev(0.82), {"delta": 0.0, "ci_low": ci[0], "ci_high": ci[1], "n": 100,
                                     "p_value": 0.5, "replicates": [2, 2]})
    assert v["holds"] is holds and phrase in v["text"]
    assert (CLAIM in v["text"]) is holds


@pytest.mark.parametrize("null_ok, mech_ok, word", [
    (True, True, "DOES NOT HOLD"), (True, False, "positive control"),
    (False, True, "null cohort"), (False, False, "positive control")])
def test_main_verdict_is_inconclusive_when_a_control_fails(null_ok, mech_ok, word):
    """The main verdict stands only if both controls came out as fixed before the run; else it
    says INCONCLUSIVE, names the failed control, and keeps the rule's own answer beside it."""
    from experiment.verdict import calibrated

    main = {"text": "DOES NOT HOLD on this simulation: no significant gain (CI includes 0).",
            "holds": False, "details": ["d"]}
    regimes = {"main": {"as_expected": True}, "null": {"as_expected": null_ok},
               "mechanism": {"as_expected": mech_ok}}
    v = calibrated(main, regimes)
    assert word in v["text"] and v["rule_text"] == main["text"]
    assert v["calibrated"] is (null_ok and mech_ok)
    assert v["text"].startswith("DOES NOT HOLD" if null_ok and mech_ok else "INCONCLUSIVE")
    assert v["holds"] is False
    undecided = calibrated(main | {"text": "UNDECIDED on this run: ...", "decidable": False},
                           regimes)
    assert undecided["text"].startswith("UNDECIDED")


@pytest.mark.parametrize("improves, covers, similar, null_ok, mech_ok", [
    (True, False, True, False, True), (True, False, False, False, True),
    (False, True, True, True, False), (False, True, False, True, False),
    (False, False, True, False, False)])
def test_controls_are_judged_on_the_gain_test(improves, covers, similar, null_ok, mech_ok):
    """Both controls calibrate the QTL-r gain test: the positive control passes on a gain
    whether or not cross-locus accuracy is similar (the reference-trained network is expected
    to be worse on carriers there), the null on no gain with a CI covering 0; an undecidable
    run passes neither."""
    from experiment.verdict import control_ok

    v = {"improves": improves, "gain_ci_covers_zero": covers, "similar": similar,
         "holds": improves and similar, "decidable": True}
    assert control_ok("null", v) is null_ok
    assert control_ok("mechanism", v) is mech_ok
    assert not control_ok("null", v | {"decidable": False})
    assert not control_ok("mechanism", v | {"decidable": False})


def test_a_worker_that_dies_is_named_with_what_to_do(tmp_path):
    """The demo's stages run in spawned processes, which re-run the main script: a script
    without a main guard gets an error that says so, not a bare BrokenProcessPool."""
    import subprocess
    import sys

    script = tmp_path / "no_guard.py"
    script.write_text("from experiment.stages import processes\n"
                      "with processes(1) as pool:\n"
                      "    pool.submit(abs, -1).result()\n")
    p = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                       timeout=120)
    assert p.returncode != 0
    assert "worker process of the demo died" in p.stderr and "__main__" in p.stderr
