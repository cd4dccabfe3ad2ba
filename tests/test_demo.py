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


def run_cli(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run([sys.executable, "-m", "clipstore", *args], capture_output=True,
                          text=True, timeout=timeout, env=env)


@pytest.fixture(scope="session")
def quick_demo(tmp_path_factory) -> Path:
    """One `clipstore demo --quick` output folder per session (a second request resumes it,
    which is instant: every stage is already done)."""
    out = tmp_path_factory.getbasetemp() / "demo_quick"
    res = run_cli("demo", "--quick", "--out", str(out))
    assert res.returncode == 0, res.stderr[-3000:]
    (out / "stdout.txt").write_text(res.stdout)
    (out / "stderr.txt").write_text(res.stderr)
    return out


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
    assert names == ["personalized", "reference", "n2_draw0", "n5_draw0"]
    libs = {r["model"]: r["libraries"] for r in res["table"]}
    assert libs["n2_draw0"] == 2 and libs["n5_draw0"] == 5 and libs["personalized"] == 7
    # the printed table and verdict are the saved ones
    assert "personalized" in stdout and res["verdict"]["text"] in stdout
    assert res["verdict"]["text"].split(" ")[0] in ("HOLDS", "DOES", "UNDECIDED")
    assert set(res["timings"]) >= {"simulate", "build", "train", "evaluate", "report"}
    # every model was really trained with what its name says
    for name in names:
        man = json.loads((out / "models" / name / "manifest.json").read_text())
        assert man["selection"]["masked"] is (name == "reference")
        assert man["selection"]["n_libraries"] == libs[name]
        assert (out / "models" / name / "model.keras").exists()
    # report: every figure it links exists, with the numbers it plots beside it
    report = (out / "report" / "report.md").read_text()
    for stem in ("subsampling_qtl_r_obs", "subsampling_profile_r_median",
                 "qtl_scatter_personalized", "qtl_scatter_reference", "mpra_pr"):
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
    pred = load_predictor(str(quick_demo / "models" / "personalized"))
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
    for name in ("personalized", "reference"):
        s = pd.read_csv(quick_demo / "eval" / f"qtl_{name}.csv")
        assert set(s["fold"]) <= {0, 1}


def test_quick_demo_resumes_without_retraining_and_refuses_another_plan(quick_demo):
    logs = sorted((quick_demo / "models").glob("*/log.csv"))
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
    cfgs = [train_config(plan, r, "store.zarr", tmp_path, 0) for r in runs]
    assert all(c.ensemble == list(range(1, 10)) and c.model == "clipnet" for c in cfgs)
    assert all((c.batch_size, c.learning_rate, c.patience, c.max_epochs) == (256, 1e-3, 10, 200)
               and c.steps_per_epoch is None and c.loss_lambda == 1 / 500 for c in cfgs)
    assert [c.masked for c in cfgs[:2]] == [False, True]
    from trainer.train import expand
    assert len(expand(cfgs[0])) == 9                 # one model per replicate fold
