"""Variant-scoring benchmark: SNPs per second with one full-size CLIPNET model on this CPU.

    .venv/bin/python bench/score.py [--snps 3000] [--batch-size 128 256]

Goal (issue 6): 100,000 SNPs in under 30 minutes with one model and reverse-complement
averaging (>= 55.6 SNPs/s). One SNP = ref + alt windows, each predicted forward and reverse
complemented: 4 forward passes of a 1000 bp sequence through the 8,036,893-parameter network
(`trainer.model.build_model(1000, 1000)`, random weights: speed does not depend on them).

The model is saved and loaded back through `trainer.predict.load_predictor` (what `clipstore
score` does), and `evaluation.score.score_snps` runs end to end on a random 2 Mb FASTA written
to bench/work: window cutting, encoding, prediction, scores, ranking. `model_seq_per_s` is
the bare network (predict_on_batch, batch 256) for comparison, so the overhead of everything
around it is visible; `model_seq_per_s_xla` is the same network as an XLA-compiled
tf.function (tried for speed; slower on this CPU). Writes bench/results/score.json (key
snps_per_s).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from bench.common import WORK, peak_rss_mb, report  # noqa: E402

TARGET_MIN, N_TARGET = 30.0, 100_000


def write_genome(path: Path, length: int = 2_000_000, seed: int = 0) -> str:
    rng = np.random.default_rng(seed)
    seq = np.array(list("ACGT"))[rng.integers(0, 4, length)]
    with open(path, "w") as f:
        f.write(">chrB\n")
        for i in range(0, length, 80):
            f.write("".join(seq[i:i + 80]) + "\n")
    return "".join(seq)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--snps", type=int, default=3000)
    ap.add_argument("--batch-size", type=int, nargs="+", default=[128, 256])
    args = ap.parse_args()

    import pandas as pd
    import tensorflow as tf

    from evaluation.score import Reference, score_snps
    from trainer.model import build_model
    from trainer.predict import load_predictor

    WORK.mkdir(parents=True, exist_ok=True)
    fa = WORK / "score_genome.fa"
    genome = write_genome(fa)
    for ext in (".fai",):
        Path(str(fa) + ext).unlink(missing_ok=True)
    rng = np.random.default_rng(1)
    pos0 = np.sort(rng.choice(np.arange(600, len(genome) - 600), args.snps, replace=False))
    ref = [genome[p] for p in pos0]
    alt = ["ACGT"[("ACGT".index(r) + int(k)) % 4] for r, k in zip(ref, rng.integers(1, 4, args.snps))]
    snps = pd.DataFrame({"variant_id": [f"s{i}" for i in range(args.snps)], "chrom": "chrB",
                         "pos": pos0 + 1, "ref": ref, "alt": alt})

    model = build_model(1000, 1000)
    n_params = model.count_params()
    path = WORK / "score_model.keras"
    model.save(path)

    x = np.eye(4, dtype=np.float32)[rng.integers(0, 4, (256, 1000))] * 2
    model.predict_on_batch(x)
    t = time.perf_counter()
    for _ in range(4):
        model.predict_on_batch(x)
    model_seq_per_s = 4 * 256 / (time.perf_counter() - t)
    # a speed option tried: XLA-compiled call (measured slower than predict_on_batch on CPU)
    xla = tf.function(lambda v: model(v, training=False), jit_compile=True)
    xt = tf.constant(x)
    xla(xt)
    t = time.perf_counter()
    for _ in range(4):
        xla(xt)
    xla_seq_per_s = 4 * 256 / (time.perf_counter() - t)

    reference = Reference(fa)
    figures: dict = {"n_snps": args.snps, "model_params": n_params, "rc_average": "yes",
                     "threads_intra": tf.config.threading.get_intra_op_parallelism_threads(),
                     "model_seq_per_s": round(model_seq_per_s, 1),
                     "model_seq_per_s_xla": round(xla_seq_per_s, 1)}
    best = None
    for bs in args.batch_size:
        pred = load_predictor(str(path), rc_average=True, batch_size=2 * bs)
        score_snps(snps.head(bs), reference, pred, batch_size=bs)          # warm-up (tracing)
        t = time.perf_counter()
        ranked = score_snps(snps, reference, pred, batch_size=bs)
        dt = time.perf_counter() - t
        assert len(ranked) == args.snps and ranked["profile_l2"].notna().all()
        rate = args.snps / dt
        figures[f"snps_per_s_batch{bs}"] = round(rate, 1)
        if best is None or rate > best[1]:
            best = (bs, rate)
    bs, rate = best
    minutes = N_TARGET / rate / 60
    figures.update({
        "snps_per_s": round(rate, 1), "best_batch_size": bs,
        "projected_minutes_100k": round(minutes, 2), "target_minutes_100k": TARGET_MIN,
        "meets_target": "yes" if minutes < TARGET_MIN else "no",
        "passes_per_snp": 4,
        "share_of_time_in_network": round(min(1.0, 4 * rate / model_seq_per_s), 3),
        "peak_rss_mb": round(peak_rss_mb(), 1),
    })
    report("score", figures)


if __name__ == "__main__":
    main()
