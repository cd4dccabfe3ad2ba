"""Reports: tables rendered with their values, figure links that resolve, folder collection."""
from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd

from evaluation import figures
from evaluation.report import Section, collect, markdown_table, write_report


def test_markdown_table_values():
    t = markdown_table(pd.DataFrame({"model": ["a", "b|c"], "auprc": [0.123456, np.nan]}))
    lines = t.splitlines()
    assert lines[0] == "| model | auprc |" and lines[1] == "|---|---|"
    assert lines[2] == "| a | 0.1235 |" and lines[3] == "| b\\|c | NaN |"
    assert markdown_table({"r": 0.5, "nested": {"x": 1}}).splitlines()[0] == "| r |"


def test_write_report_and_collect(tmp_path):
    out = tmp_path / "results"
    figures.delta_auprc(np.linspace(-0.1, 0.2, 50), out / "figs" / "delta", delta=0.05)
    (out / "summary.json").write_text(json.dumps({"pearson_r": 0.61, "n": 40, "by_kind": {
        "ti": {"n": 30, "pearson_r": 0.7}, "di": {"n": 10, "pearson_r": 0.2}}}))
    pd.DataFrame({"model": ["ensemble"], "profile_r_median": [0.7]}).to_csv(out / "crossloci.csv", index=False)
    sections = collect(out)
    titles = [s.title for s in sections]
    assert titles == ["crossloci", "summary", "delta"]       # delta.json is the figure's data
    paths = write_report(tmp_path / "rep" / "report", sections, title="T")
    md = paths[0].read_text()
    assert "| pearson_r | n |" in md and "| 0.61 | 40 |" in md and "| ensemble | 0.7 |" in md
    assert "| by_kind | n | pearson_r |" in md and "| di | 10 | 0.2 |" in md
    link = md.split("](")[1].split(")")[0]
    assert (paths[0].parent / link).resolve() == (out / "figs" / "delta.png").resolve()

    class P(HTMLParser):
        imgs: list = []

        def handle_starttag(self, tag, attrs):
            if tag == "img":
                self.imgs.append(dict(attrs)["src"])
    p = P()
    p.feed(paths[1].read_text())
    assert [Path(paths[1].parent / s).exists() for s in p.imgs] == [True]


def test_section_text_and_dict_table(tmp_path):
    paths = write_report(tmp_path / "r", [Section("MPRA", "emVars vs active", tables=[{"auprc": 0.4}])],
                         html_too=False)
    assert len(paths) == 1 and "emVars vs active" in paths[0].read_text()
