"""Record finished demo runs (one output folder per training seed) in bench/results/demo.json and
regenerate the README's demo block from it. Only numbers that a finished run saved are written;
a seed without a finished run is listed under `missing`.

    python -m experiment.record demo_out_seed0 demo_out_seed1 demo_out_seed2 [--readme README.md]
"""
from __future__ import annotations

import argparse
import re
from pathlib import Path

from .jsonio import read_json, write_json
from .report import COLUMNS, _cells, regime_lines
from .verdict import _f

ROOT = Path(__file__).resolve().parents[1]
METRICS = ("profile_r_median", "quantity_log_r", "directionality_r", "qtl_r_obs", "qtl_rho_obs",
           "qtl_r_members", "qtl_r_true_ti", "qtl_r_true_di", "mpra_auprc", "seeds")


def collect(folders: list[Path]) -> dict:
    """bench/results/demo.json's content from finished demo folders (results.json each)."""
    runs = {}
    missing = []
    for f in folders:
        p = Path(f) / "results.json"
        if not p.exists():
            missing.append(str(f))
            continue
        res = read_json(p)
        runs[int(res["train_seed"])] = res
    out: dict = {"missing": missing, "by_train_seed": {}}
    for seed, res in sorted(runs.items()):
        rg = res["regimes"]
        out["by_train_seed"][str(seed)] = {
            "plan": res["plan"]["name"], "simulation_seed": res["seed"],
            "machine": res["machine"], "date": res["date"],
            "minutes_pipeline": res["wall_seconds"] / 60,
            "cpu_minutes_pipeline": res.get("cpu_seconds", float("nan")) / 60,
            "stage_seconds": res["timings"], "stage_cpu_seconds": res.get("cpu_timings"),
            "verdict": res["verdict"]["text"],
            "calibrated": res["verdict"].get("calibrated"),
            "main_rule": res["verdict"].get("rule_text", res["verdict"]["text"]),
            "regimes": {k: {"expect_holds": g["expect_holds"], "holds": g["verdict"]["holds"],
                            "as_expected": g["as_expected"], "verdict": g["verdict"]["text"],
                            "qtl_gain": g["verdict"]["qtl_gain"], "mpra_gain": g["mpra_gain"]}
                        for k, g in rg.items()},
            "conditions": {r["model"]: {k: r.get(k) for k in METRICS} | {"regime": r["regime"]}
                           for r in res["table"]},
        }
    by = out["by_train_seed"]
    out["minutes_pipeline"] = {s: v["minutes_pipeline"] for s, v in by.items()}
    out["cpu_minutes_pipeline"] = {s: v["cpu_minutes_pipeline"] for s, v in by.items()}
    out["verdict_by_seed"] = {s: v["verdict"] for s, v in by.items()}
    out["calibrated_by_seed"] = {s: v["calibrated"] for s, v in by.items()}
    out["main_rule_by_seed"] = {s: v["main_rule"] for s, v in by.items()}
    out["null_control_holds"] = {s: v["regimes"]["null"]["holds"] for s, v in by.items()}
    out["null_control_gain_ci"] = {s: [v["regimes"]["null"]["qtl_gain"]["ci_low"],
                                       v["regimes"]["null"]["qtl_gain"]["ci_high"]]
                                   for s, v in by.items()}
    out["mechanism_regime_holds"] = {s: v["regimes"]["mechanism"]["holds"]
                                     for s, v in by.items()}
    # what calibrates the verdict (experiment.verdict.CONTROL_EXPECTS): each control's gain test
    for name in ("null", "mechanism"):
        out[f"{name}_control_as_expected"] = {s: v["regimes"][name]["as_expected"]
                                              for s, v in by.items()}
    first = next(iter(runs.values()), None)
    out["machine"] = first["machine"] if first else ""
    out["date"] = max((r["date"] for r in runs.values()), default="")
    out["commit"] = _commit()
    out["note"] = ("wall minutes were measured on a 2-core machine shared with other jobs (the "
                   "README's demo section says which): they over-state a quiet machine's time; "
                   "CPU minutes (this process and its finished children) are the cost")
    return out


def _commit() -> str:
    import subprocess
    try:
        return subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def readme_block(rec: dict, results: dict[int, dict]) -> str:
    """The README's demo table: every condition of each recorded training seed, and the
    verdict of each cohort per seed."""
    lines = []
    for seed, res in sorted(results.items()):
        cpu = res.get("cpu_seconds")
        lines += [f"**Training seeds set {seed}** (`clipstore demo --train-seed {seed}`, plan "
                  f"`{res['plan']['name']}`, {res['machine']}, {res['date'][:10]}): "
                  f"{res['wall_seconds'] / 60:.1f} min wall (README: how loaded the machine was)"
                  + (f", {cpu / 60:.1f} CPU-min" if cpu else "") + ".", "",
                  "| " + " | ".join(h for _, h in COLUMNS) + " |",
                  "|" + "|".join("---" for _ in COLUMNS) + "|"]
        lines += ["| " + " | ".join(_cells(r)) + " |" for r in res["table"]]
        lines += ["", f"* main: **{res['verdict']['text']}**"]
        lines += [f"* {x}" for x in res["verdict"]["details"]]
        lines += [f"* {x}" for x in regime_lines(res)]
        lines.append("")
    if rec["missing"]:
        lines.append("Not run (no finished results): " + ", ".join(
            f"`{m}`" for m in rec["missing"]) + ".")
    if rec["null_control_gain_ci"]:
        lines.append("Null control by seed: " + "; ".join(
            f"seed set {s}: holds = {rec['null_control_holds'][s]}, QTL-r gain CI "
            f"[{_f(ci[0], True)}, {_f(ci[1], True)}]"
            for s, ci in rec["null_control_gain_ci"].items()) + ".")
    return "\n".join(lines).rstrip() + "\n"


def replace_block(text: str, block: str) -> str:
    pat = re.compile(r"(<!-- BEGIN demo -->\n).*?(<!-- END demo -->)", re.S)
    if not pat.search(text):
        raise ValueError("README has no <!-- BEGIN demo --> ... <!-- END demo --> block")
    return pat.sub(lambda m: m.group(1) + block + m.group(2), text)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("folders", nargs="+", type=Path)
    ap.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "demo.json")
    ap.add_argument("--readme", type=Path, default=ROOT / "README.md")
    a = ap.parse_args(argv)
    rec = collect(a.folders)
    write_json(a.json, rec)
    results = {int(read_json(f / "results.json")["train_seed"]): read_json(f / "results.json")
               for f in a.folders if (f / "results.json").exists()}
    if results:
        a.readme.write_text(replace_block(a.readme.read_text(), readme_block(rec, results)))
    print(f"wrote {a.json}" + (f" and {a.readme}" if results else ""))


if __name__ == "__main__":
    main()
