"""The rule on the paper's claim, with thresholds fixed before any run."""
from __future__ import annotations

import numpy as np

# Verdict thresholds, fixed before any run: cross-locus accuracy counts as "similar" when the
# personalized and reference-trained models differ by at most this much in median profile r
# and in log-quantity r; variant-effect prediction "improves" when the 95 % bootstrap CI of
# the QTL Pearson-r gain (personalized - reference, QTLs resampled) lies above zero.
SIMILAR_CROSSLOCI = 0.05
N_BOOT = 1000

def verdict(results: dict[str, dict], gain: dict) -> dict:
    """Does 'personalized training improves variant-effect prediction while cross-locus
    accuracy stays similar' hold here? Thresholds are the module constants."""
    p, r = results["personalized"], results["reference"]
    num = lambda d, k: float("nan") if d[k] is None else float(d[k])  # cached NaN = null
    d_prof = num(p["crossloci"], "profile_r_median") - num(r["crossloci"], "profile_r_median")
    d_quant = num(p["crossloci"], "quantity_log_r") - num(r["crossloci"], "quantity_log_r")
    gain = {k: (float("nan") if v is None else v) for k, v in gain.items()}
    similar = bool(abs(d_prof) <= SIMILAR_CROSSLOCI and abs(d_quant) <= SIMILAR_CROSSLOCI)
    improves = bool(np.isfinite(gain["ci_low"]) and gain["ci_low"] > 0)
    holds = improves and similar
    decidable = bool(np.isfinite([d_prof, d_quant, gain["delta"]]).all())
    parts = [
        f"QTL effect prediction: personalized r = {_f(p['qtl']['pearson_r'])} vs reference-trained "
        f"r = {_f(r['qtl']['pearson_r'])} (gain {gain['delta']:+.3f}, 95% CI "
        f"[{gain['ci_low']:+.3f}, {gain['ci_high']:+.3f}], n = {gain['n']} QTLs): "
        + ("improves" if improves else "no significant improvement") + ".",
        f"Cross-locus accuracy: median profile r {_f(p['crossloci']['profile_r_median'])} vs "
        f"{_f(r['crossloci']['profile_r_median'])} (diff {d_prof:+.3f}), log-quantity r "
        f"{_f(p['crossloci']['quantity_log_r'])} vs {_f(r['crossloci']['quantity_log_r'])} "
        f"(diff {d_quant:+.3f}): " + ("similar" if similar else "not similar")
        + f" (threshold |diff| <= {SIMILAR_CROSSLOCI}).",
        "Against the simulator's true effects (signed, Pearson r): tiQTL log-quantity change "
        f"{_f(p['qtl']['truth_r']['ti'])} personalized vs {_f(r['qtl']['truth_r']['ti'])} "
        f"reference-trained; diQTL directionality change {_f(p['qtl']['truth_r']['di'])} vs "
        f"{_f(r['qtl']['truth_r']['di'])} (reported, not part of the rule).",
    ]
    claim = ("personalized training improves variant-effect prediction while cross-locus "
             "accuracy stays similar")
    head = (f"HOLDS on this simulation: {claim}." if holds else
            f"UNDECIDED on this run: {claim} — a metric is undefined (too few QTLs or a "
            "model that predicts a constant); use the default or --full plan." if not decidable
            else
            f"DOES NOT HOLD on this simulation: {claim} — " +
            ("the variant-effect gain is not significant" if not improves else "") +
            (" and " if not improves and not similar else "") +
            ("cross-locus accuracy differs beyond the threshold" if not similar else "") + ".")
    return {"holds": holds, "decidable": decidable, "improves": improves, "similar": similar,
            "delta_profile_r": d_prof, "delta_quantity_log_r": d_quant,
            "qtl_gain": {k: v for k, v in gain.items()}, "text": head, "details": parts}


def _f(v, sign: bool = False) -> str:
    """3 decimals, or n/a for an undefined (NaN / JSON null) number."""
    if v is None or not np.isfinite(v):
        return "n/a"
    return f"{v:+.3f}" if sign else f"{v:.3f}"


def mpra_line(g: dict) -> str:
    return (f"MPRA emVar auPRC, personalized - reference: {_f(g.get('delta'), True)} "
            f"(95% CI [{_f(g.get('ci_low'), True)}, {_f(g.get('ci_high'), True)}], "
            f"p = {_f(g.get('p_value'))}).")


