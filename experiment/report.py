"""Tables, the Markdown summary and the report with its figures."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .jsonio import Log
from .plans import REGIMES, Plan
from .verdict import _f


def mpra_line(g: dict) -> str:
    return (f"MPRA emVar auPRC, personalized - reference: {_f(g.get('delta'), True)} "
            f"(95% CI [{_f(g.get('ci_low'), True)}, {_f(g.get('ci_high'), True)}], "
            f"p = {_f(g.get('p_value'))}; ensembles' predictions, oligos resampled).")


def summary_rows(results: dict[str, dict]) -> list[dict]:
    rows = []
    for name, r in results.items():
        rows.append({
            "model": name, "kind": r["run"]["kind"], "regime": r["run"].get("regime", "main"),
            "libraries": r["run"]["n_libraries"], "seeds": len(r["run"].get("seeds") or [0]),
            "profile_r_median": r["crossloci"]["profile_r_median"],
            "quantity_log_r": r["crossloci"]["quantity_log_r"],
            "directionality_r": r["crossloci"]["directionality_r"],
            "qtl_r_obs": r["qtl"]["pearson_r"],
            "qtl_rho_obs": r["qtl"].get("spearman_r"),
            "qtl_r_members": r["qtl"].get("member_pearson_r"),
            "qtl_r_true_ti": r["qtl"]["truth_r"]["ti"],
            "qtl_r_true_di": r["qtl"]["truth_r"]["di"],
            "qtl_no_effect": r["qtl"]["share_no_effect"],
            "mpra_auprc": r["mpra"]["auprc"]})
    return rows


COLUMNS = [("model", "model"), ("regime", "cohort"), ("libraries", "libs"), ("seeds", "seeds"),
           ("profile_r_median", "profile r"), ("quantity_log_r", "log-quant r"),
           ("qtl_r_obs", "QTL r (obs)"), ("qtl_rho_obs", "QTL ρ (obs)"),
           ("qtl_r_true_ti", "tiQTL r (true)"), ("qtl_r_true_di", "diQTL r (true)"),
           ("mpra_auprc", "MPRA auPRC")]


def _cell(v) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return "n/a" if not np.isfinite(v) else f"{v:.3f}"
    return str(v)


def _cells(r: dict) -> list[str]:
    c = [_cell(r.get(k)) for k, _ in COLUMNS]
    if r.get("seeds") == 1:
        c[0] += " (single run)"
    return c


def table_text(rows: list[dict]) -> str:
    """Fixed-width table for the terminal."""
    cells = [[h for _, h in COLUMNS]] + [_cells(r) for r in rows]
    w = [max(len(c[i]) for c in cells) for i in range(len(COLUMNS))]
    lines = ["  ".join(c[i].rjust(w[i]) if i else c[i].ljust(w[i]) for i in range(len(c)))
             for c in cells]
    lines.insert(1, "  ".join("-" * x for x in w))
    return "\n".join(lines)


def regime_lines(res: dict, why: bool = False) -> list[str]:
    """One line per regime: expected outcome (fixed before the run), verdict, and whether the
    instrument behaved as expected (`why`: with the reason for the expectation)."""
    out = []
    for name, g in (res.get("regimes") or {}).items():
        v = g["verdict"]
        gain = v["qtl_gain"]
        out.append(
            f"{name} cohort: expected "
            + g.get("expect", "HOLDS" if g["expect_holds"] else "DOES NOT HOLD")
            + (f" ({g['why']})" if why else "")
            + f"; observed {v['text'].split(':')[0]}, QTL-r gain "
            f"{_f(gain.get('delta'), True)} [95% CI {_f(gain.get('ci_low'), True)}, "
            f"{_f(gain.get('ci_high'), True)}] — "
            + ("as expected." if g["as_expected"] else "NOT as expected."))
    return out


def summary_markdown(res: dict) -> str:
    """The README/report block: table, verdicts of the three cohorts, and what it cost."""
    rows = res["table"]
    seeds = f"seed {res['seed']}"
    if res.get("train_seed", res["seed"]) != res["seed"]:
        seeds += f" (training seed {res['train_seed']})"
    t = res["timings"]
    cpu = res.get("cpu_seconds")
    lines = [f"Last run: `clipstore demo` plan `{res['plan']['name']}`, {seeds}, "
             f"{res['machine']}, {res['date'][:10]}: **{res['wall_seconds'] / 60:.1f} min** "
             f"for the pipeline (simulate {t.get('simulate', 0):.0f}s, build "
             f"{t.get('build', 0):.0f}s, train {t.get('train', 0):.0f}s, "
             f"evaluate {t.get('evaluate', 0):.0f}s)"
             + (f", {cpu / 60:.1f} CPU-min" if cpu else "") + ".", "",
             "| " + " | ".join(h for _, h in COLUMNS) + " |",
             "|" + "|".join("---" for _ in COLUMNS) + "|"]
    lines += ["| " + " | ".join(_cells(r)) + " |" for r in rows]
    v = res["verdict"]
    lines += ["", f"**{v['text']}**", ""] + [f"* {d}" for d in v["details"]]
    if res.get("mpra_gain"):
        lines.append(f"* {mpra_line(res['mpra_gain'])}")
    cal = regime_lines(res)
    if cal:
        lines += ["", "Calibration (expected outcomes fixed in `experiment/plans.py` before "
                  "the run):", ""] + [f"* {c}" for c in cal]
    return "\n".join(lines)


def stage_report(out: Path, res: dict, results: dict[str, dict], plan: Plan, log: Log) -> Path:
    import pandas as pd

    from evaluation import figures as efig
    from evaluation.report import Section, write_report

    from . import figures

    rep = out / "report"
    figs = {}
    rows = {r["model"]: r for r in res["table"]}
    sub = [r for r in res["table"] if r["kind"] == "subsampled"]
    for metric, label in (("qtl_r_obs", "QTL r (pred vs obs L2)"),
                          ("profile_r_median", "median profile r (test fold)")):
        lines = {}
        for name in ("personalized", "reference"):
            lines[name] = {"value": rows[name][metric], "n": rows[name]["seeds"],
                           "members": rows[name]["qtl_r_members"] if metric == "qtl_r_obs"
                           else None}
        pts = [{"model": r["model"], "n_libraries": r["libraries"], "value": r[metric]}
               for r in sub]
        figs[f"subsampling_{metric}"] = figures.subsampling_points(
            pts, rep / f"subsampling_{metric}", metric=label, lines=lines)[0]
    scatters = []
    for g in REGIMES:
        for kind in ("personalized", "reference"):
            name = f"{g.prefix}{kind}"
            if name not in results:
                continue
            s = pd.read_csv(out / "eval" / f"qtl_{name}.csv")
            stem = "qtl_scatter_" + name
            figs[stem] = figures.qtl_scatter(
                s["obs_l2"], s["pred_l2"], rep / stem,
                title=f"{name} ({g.name} cohort, {rows[name]['seeds']}-seed ensemble)")[0]
            scatters.append(figs[stem])
    main = [r for r in results.values() if r["run"].get("regime", "main") == "main"]
    curves = {r["run"]["name"]: (np.asarray(r["mpra"]["precision"], float),
                                 np.asarray(r["mpra"]["recall"], float),
                                 r["mpra"]["auprc"] if r["mpra"]["auprc"] is not None
                                 else float("nan"))
              for r in main if r["run"]["kind"] != "subsampled"
              or r["run"]["n_libraries"] == max(plan.subsample_n)}
    m0 = results["personalized"]["mpra"]
    base = m0["n_emvar"] / max(1, m0["n_emvar"] + m0["n_active_non_emvar"])
    figs["mpra_pr"] = efig.pr_curves(curves, rep / "mpra_pr", baseline=base)[0]
    if res.get("mpra_gain") and res["mpra_gain"].get("deltas") is not None:
        g = res["mpra_gain"]
        figs["mpra_delta"] = efig.delta_auprc(
            np.asarray(g.get("deltas", []), float), rep / "mpra_delta_auprc",
            label="personalized - reference", delta=g["delta"], p_value=g["p_value"])[0]
    table = pd.DataFrame([{k: v for k, v in r.items() if k != "qtl_r_members"}
                          for r in res["table"]])
    cal = regime_lines(res, why=True)
    sections = [
        Section("Verdict (main cohort)", res["verdict"]["text"] + "\n\n" + "\n".join(
            f"* {d}" for d in res["verdict"]["details"]), tables=[table]),
        Section("Calibration: negative control and mechanism regime",
                "The same pipeline and rule on two more cohorts simulated with the same seed: "
                "every variant effect set to 0 (null), and an activator type that the reference "
                "carries only broken (mechanism). Expected outcomes are fixed in "
                "`experiment/plans.py` before any run; whatever came out is reported.\n\n"
                + "\n".join(f"* {c}" for c in cal)),
        Section("Subsampling", "Hollow points: subsampled models, each a single run (one "
                "seed, one draw): no mean or CI. Lines: the all-library ensembles; bands: the "
                "range of their members.",
                figures=[figs["subsampling_qtl_r_obs"], figs["subsampling_profile_r_median"]]),
        Section("Initiation QTLs", "L2 norm of the difference between hom-ref and hom-alt mean "
                "tracks, observed (RPM) vs predicted (mean of the ensemble members' tracks) from "
                "each individual's own genome; QTLs on held-out folds only; log axes, Pearson "
                "and Spearman.", figures=scatters),
        Section("MPRA-like classification (main cohort)", "emVars vs active non-emVars, "
                "squared predicted log2(ref/alt) as score; oligos on held-out folds only.",
                figures=[figs["mpra_pr"]] + ([figs["mpra_delta"]] if "mpra_delta" in figs else [])),
        Section("Plan", f"{plan.notes}", tables=[{k: str(v) for k, v in plan.to_dict().items()}]),
    ]
    paths = write_report(rep / "report", sections, title="clipstore demo: personalized vs "
                         "reference-trained ensembles on simulated cohorts")
    (rep / "summary.md").write_text(summary_markdown(res) + "\n")
    log(f"report: {paths[0]}")
    return paths[0]
