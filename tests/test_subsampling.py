"""Subsampling summary against scipy's t interval, computed independently per group."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from evaluation import subsampling


def test_summary_matches_t_interval():
    rng = np.random.default_rng(0)
    runs = pd.DataFrame({"n_libraries": np.repeat([5, 10, 20], 5), "run": np.tile(range(5), 3),
                         "value": rng.normal(0.5, 0.05, 15)})
    runs.loc[3, "value"] = np.nan                               # a failed run is dropped
    curve = subsampling.summarise(runs)
    assert curve["n_libraries"].tolist() == [5, 10, 20]
    assert curve["n_runs"].tolist() == [4, 5, 5]
    for row in curve.itertuples():
        v = runs.loc[runs.n_libraries == row.n_libraries, "value"].dropna().to_numpy()
        lo, hi = stats.t.interval(0.95, len(v) - 1, loc=v.mean(), scale=stats.sem(v))
        assert row.mean == pytest.approx(v.mean())
        assert (row.ci_low, row.ci_high) == (pytest.approx(lo), pytest.approx(hi))


def test_single_run_and_collect():
    runs = subsampling.collect([{"n_libraries": 5, "profile_r": 0.4},
                                {"n_libraries": 10, "profile_r": 0.5, "run": 3}], metric="profile_r")
    assert runs["run"].tolist() == [0, 3]
    curve = subsampling.summarise(runs)
    assert curve["mean"].tolist() == [0.4, 0.5] and curve["single_run"].all()
    assert curve[["sd", "ci_low", "ci_high"]].isna().all().all()     # no zero-width "CI"
    with pytest.raises(ValueError):
        subsampling.summarise(runs, y="missing")


def test_cli_subsampling(tmp_path):
    from click.testing import CliRunner

    from clipstore.cli import cli

    runs = pd.DataFrame({"n_libraries": [5, 5, 5, 10, 10, 10], "auprc": [0.2, 0.25, 0.3, 0.4, 0.42, 0.38]})
    runs.to_csv(tmp_path / "runs.tsv", sep="\t", index=False)
    out = tmp_path / "o"
    res = CliRunner().invoke(cli, ["evaluate", "subsampling", str(tmp_path / "runs.tsv"), "--metric",
                                   "auprc", "--reference", "0.1", "--personalized", "0.5", "-o", str(out)])
    assert res.exit_code == 0, res.output
    curve = pd.read_csv(out / "subsampling_curve.csv")
    assert curve["mean"].tolist() == pytest.approx([0.25, 0.4])
    assert (out / "subsampling.png").exists() and (out / "subsampling.svg").exists()
    res = CliRunner().invoke(cli, ["evaluate", "subsampling", str(tmp_path / "runs.tsv"), "--metric", "r2"])
    assert res.exit_code != 0


def test_single_runs_are_marked_in_the_figure(tmp_path):
    import json

    runs = pd.DataFrame({"n_libraries": [5, 10, 10, 10], "value": [0.3, 0.4, 0.42, 0.38]})
    curve = subsampling.run(runs, tmp_path, metric="auprc")
    assert curve["single_run"].tolist() == [True, False]
    data = json.loads((tmp_path / "subsampling.json").read_text())
    assert data["curve"]["single_run"] == [True, False]
    assert data["curve"]["ci_low"][0] is None and data["curve"]["ci_low"][1] < 0.4
