"""Tables, the Markdown summary and the report with its figures."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .jsonio import Log
from .plans import Plan
from .verdict import _f


def mpra_line(g: dict) -> str:
    return (f"MPRA emVar auPRC, personalized - reference: {_f(g.get('delta'), True)} "
            f"(95% CI [{_f(g.get('ci_low'), True)}, {_f(g.get('ci_high'), True)}], "
            f"p = {_f(g.get('p_value'))}).")


def summary_rows(results: dict[str, dict]) -> list[dict]:
    rows = []
    for name, r in results.items():
        rows.append({
            "model": name, "kind": r["run"]["kind"], "libraries": r["run"]["n_libraries"],
            "profile_r_median": r["crossloci"]["profile_r_median"],
            "quantity_log_r": r["crossloci"]["quantity_log_r"],
            "directionality_r": r["crossloci"]["directionality_r"],
            "qtl_r_obs": r["qtl"]["pearson_r"],
            "qtl_r_true_ti": r["qtl"]["truth_r"]["ti"],
            "qtl_r_true_di": r["qtl"]["truth_r"]["di"],
            "qtl_no_effect": r["qtl"]["share_no_effect"],
            "mpra_auprc": r["mpra"]["auprc"]})
    return rows


COLUMNS = [("model", "model"), ("libraries", "libs"), ("profile_r_median", "profile r"),
           ("quantity_log_r", "log-quant r"), ("qtl_r_obs", "QTL r (obs)"),
           ("qtl_r_true_ti", "tiQTL r (true)"), ("qtl_r_true_di", "diQTL r (true)"),
           ("mpra_auprc", "MPRA auPRC")]


def _cell(v) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return "n/a" if not np.isfinite(v) else f"{v:.3f}"
    return str(v)


def table_text(rows: list[dict]) -> str:
    """Fixed-width table for the terminal."""
    cells = [[h for _, h in COLUMNS]] + [[_cell(r[k]) for k, _ in COLUMNS] for r in rows]
    w = [max(len(c[i]) for c in cells) for i in range(len(COLUMNS))]
    lines = ["  ".join(c[i].rjust(w[i]) if i else c[i].ljust(w[i]) for i in range(len(c)))
             for c in cells]
    lines.insert(1, "  ".join("-" * x for x in w))
    return "\n".join(lines)


def summary_markdown(res: dict) -> str:
    """The README/report block: table, verdict, and how long it took."""
    rows = res["table"]
    seeds = f"seed {res['seed']}"
    if res.get("train_seed", res["seed"]) != res["seed"]:
        seeds += f" (training seed {res['train_seed']})"
    lines = [f"Last run: `clipstore demo` plan `{res['plan']['name']}`, {seeds}, "
             f"{res['machine']}, {res['date'][:10]}: **{res['wall_seconds'] / 60:.1f} min** "
             f"for the pipeline (simulate {res['timings'].get('simulate', 0):.0f}s, build "
             f"{res['timings'].get('build', 0):.0f}s, train {res['timings'].get('train', 0):.0f}s, "
             f"evaluate {res['timings'].get('evaluate', 0):.0f}s).", "",
             "| " + " | ".join(h for _, h in COLUMNS) + " |",
             "|" + "|".join("---" for _ in COLUMNS) + "|"]
    lines += ["| " + " | ".join(_cell(r[k]) for k, _ in COLUMNS) + " |" for r in rows]
    v = res["verdict"]
    lines += ["", f"**{v['text']}**", ""] + [f"* {d}" for d in v["details"]]
    if res.get("mpra_gain"):
        lines.append(f"* {mpra_line(res['mpra_gain'])}")
    return "\n".join(lines)


def stage_report(out: Path, res: dict, results: dict[str, dict], plan: Plan, log: Log) -> Path:
    import pandas as pd

    from evaluation import figures, subsampling
    from evaluation.report import Section, write_report

    rep = out / "report"
    figs = {}
    sub = [r for r in results.values() if r["run"]["kind"] in ("subsampled", "personalized")]
    for metric, label in (("qtl_r_obs", "QTL r (pred vs obs L2)"),
                          ("profile_r_median", "median profile r (test fold)")):
        rows = {r["model"]: r for r in res["table"]}
        runs = pd.DataFrame([{"n_libraries": rows[r["run"]["name"]]["libraries"],
                              "run": r["run"]["draw"], "value": rows[r["run"]["name"]][metric]}
                             for r in sub])
        curve = subsampling.summarise(runs)
        figs[f"subsampling_{metric}"] = figures.subsampling_curve(
            curve, runs, rep / f"subsampling_{metric}", metric=label,
            reference=rows["reference"][metric], personalized=rows["personalized"][metric])[0]
    for name in ("personalized", "reference"):
        s = pd.read_csv(out / "eval" / f"qtl_{name}.csv")
        figs[f"qtl_{name}"] = figures.density_scatter(
            s["obs_l2"], s["pred_l2"], rep / f"qtl_scatter_{name}", xlabel="observed L2 score",
            ylabel="predicted L2 score", title=name)[0]
    curves = {n: (np.asarray(r["mpra"]["precision"], float), np.asarray(r["mpra"]["recall"], float),
                  r["mpra"]["auprc"] if r["mpra"]["auprc"] is not None else float("nan"))
              for n, r in results.items() if r["run"]["kind"] != "subsampled"
              or r["run"]["n_libraries"] == max(plan.subsample_n)}
    m0 = results["personalized"]["mpra"]
    base = m0["n_emvar"] / max(1, m0["n_emvar"] + m0["n_active_non_emvar"])
    figs["mpra_pr"] = figures.pr_curves(curves, rep / "mpra_pr", baseline=base)[0]
    if res.get("mpra_gain"):
        g = res["mpra_gain"]
        figs["mpra_delta"] = figures.delta_auprc(
            np.asarray(g.get("deltas", []), float), rep / "mpra_delta_auprc",
            label="personalized - reference", delta=g["delta"], p_value=g["p_value"])[0]
    table = pd.DataFrame(res["table"])
    sections = [
        Section("Verdict", res["verdict"]["text"] + "\n\n" + "\n".join(
            f"* {d}" for d in res["verdict"]["details"]), tables=[table]),
        Section("Subsampling", "Each point is one training run; lines: the reference-trained "
                "model (masked variants, all libraries) and the personalized model (all).",
                figures=[figs["subsampling_qtl_r_obs"], figs["subsampling_profile_r_median"]]),
        Section("Initiation QTLs", "L2 norm of the difference between hom-ref and hom-alt mean "
                "tracks, observed (RPM) vs predicted from each individual's own genome; QTLs on "
                "held-out folds only.", figures=[figs["qtl_personalized"], figs["qtl_reference"]]),
        Section("MPRA-like classification", "emVars vs active non-emVars, squared predicted "
                "log2(ref/alt) as score; oligos on held-out folds only.",
                figures=[figs["mpra_pr"]] + ([figs["mpra_delta"]] if "mpra_delta" in figs else [])),
        Section("Plan", f"{plan.notes}", tables=[{k: str(v) for k, v in plan.to_dict().items()}]),
    ]
    paths = write_report(rep / "report", sections, title="clipstore demo: personalized vs "
                         "reference-trained models on a simulated cohort")
    (rep / "summary.md").write_text(summary_markdown(res) + "\n")
    log(f"report: {paths[0]}")
    return paths[0]


