"""A Markdown (and HTML) report that gathers figures and tables.

    from evaluation.report import Section, write_report
    write_report("out/report", [
        Section("Cross-locus", "Ensemble on the test fold.", tables=[crossloci_df],
                figures=["out/crossloci_scatter.png"]),
        Section("MPRA", tables=[{"model": "personal", "auprc": 0.41}]),
    ], title="clipstore evaluation")        # -> out/report.md and out/report.html

`collect(folder)` makes one section per figure (PNG) and per results table (.csv, or a flat
.json of numbers) found in a folder, which is what `clipstore evaluate report DIR` writes.
Figures are linked by path relative to the report, so the folder can be moved as a whole.
"""
from __future__ import annotations

import html
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd


@dataclass
class Section:
    title: str
    text: str = ""
    tables: Sequence[pd.DataFrame | Mapping] = field(default_factory=list)
    figures: Sequence[str | Path] = field(default_factory=list)


def _fmt(v) -> str:
    if isinstance(v, (float, np.floating)):
        return "NaN" if not np.isfinite(v) else f"{v:.4g}"
    return str(v)


def _frame(t: pd.DataFrame | Mapping) -> pd.DataFrame:
    if isinstance(t, pd.DataFrame):
        return t
    flat = {k: v for k, v in t.items() if np.ndim(v) == 0 and not isinstance(v, Mapping)}
    return pd.DataFrame([flat])


def markdown_table(t: pd.DataFrame | Mapping) -> str:
    """A GitHub-flavoured Markdown table (a dict becomes one row of its scalar values)."""
    df = _frame(t)
    cols = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(_fmt(v).replace("|", "\\|") for v in row) + " |")
    return "\n".join(lines)


def html_table(t: pd.DataFrame | Mapping) -> str:
    df = _frame(t)
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in row) + "</tr>"
                   for row in df.itertuples(index=False))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def write_report(stem: str | Path, sections: Sequence[Section], *, title: str = "Evaluation",
                 html_too: bool = True) -> list[Path]:
    """Write stem.md (and stem.html); figure links are relative to the report's folder."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    rel = lambda p: os.path.relpath(Path(p).resolve(), stem.parent.resolve())
    md = [f"# {title}", ""]
    hb = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
          "<style>body{font-family:sans-serif;max-width:60em;margin:auto}table{border-collapse:"
          "collapse}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}"
          "img{max-width:100%}</style></head><body>", f"<h1>{html.escape(title)}</h1>"]
    for s in sections:
        md += [f"## {s.title}", ""]
        hb.append(f"<h2>{html.escape(s.title)}</h2>")
        if s.text:
            md += [s.text, ""]
            hb.append(f"<p>{html.escape(s.text)}</p>")
        for t in s.tables:
            md += [markdown_table(t), ""]
            hb.append(html_table(t))
        for f in s.figures:
            md += [f"![{Path(f).stem}]({rel(f)})", ""]
            hb.append(f"<figure><img src='{html.escape(rel(f))}' alt='{html.escape(Path(f).stem)}'>"
                      f"<figcaption>{html.escape(Path(f).stem)}</figcaption></figure>")
    out = [stem.with_suffix(".md")]
    out[0].write_text("\n".join(md))
    if html_too:
        out.append(stem.with_suffix(".html"))
        out[1].write_text("\n".join(hb + ["</body></html>"]))
    return out


def collect(folder: str | Path) -> list[Section]:
    """Sections for every figure (PNG; its plotted numbers stay beside it) and every results
    table in `folder`: a .csv that is not a figure's data, or a .json whose values are
    scalars (or a list of flat records)."""
    folder = Path(folder)
    pngs = sorted(folder.rglob("*.png"))
    fig_stems = {p.with_suffix("") for p in pngs}
    sections = []
    for path in sorted(folder.rglob("*")):
        if path.with_suffix("") in fig_stems or path.suffix not in (".csv", ".json"):
            continue
        if path.suffix == ".csv":
            sections.append(Section(path.stem, tables=[pd.read_csv(path)]))
            continue
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError:
            continue
        if isinstance(data, list) and data and all(isinstance(r, dict) for r in data):
            sections.append(Section(path.stem, tables=[pd.DataFrame(data)]))
        elif isinstance(data, dict):
            flat = {k: v for k, v in data.items() if not isinstance(v, (dict, list))}
            tables: list = [flat] if flat else []
            for k, v in data.items():      # e.g. qtl_summary's by_kind: {ti: {...}, di: {...}}
                if isinstance(v, dict) and v and all(isinstance(r, dict) for r in v.values()):
                    tables.append(pd.DataFrame([{k: name, **{kk: vv for kk, vv in r.items()
                                                             if not isinstance(vv, (dict, list))}}
                                                for name, r in v.items()]))
            if tables:
                sections.append(Section(path.stem, tables=tables))
    for p in pngs:
        sections.append(Section(p.stem, figures=[p]))
    return sections
