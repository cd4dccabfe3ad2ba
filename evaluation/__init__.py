"""Benchmarks, metrics and figures for sequence-to-function models (docs/evaluation.md).

Everything here consumes arrays, tables and *Predictor* callables (see `evaluation.predictor`),
so models from other tools can be scored the same way as ours.

    crossloci     metric suite (profile r, JS distance, directionality, TSS position, quantity)
    qtl           initiation QTLs: genotype-group L2 scores, observed vs predicted, leakage-free
    mpra          reporter constructs, emVar auPRC, bootstrap delta auPRC, log2FC agreement
    score         variant-effect scoring and ranking for any SNP list (VCF/TSV + FASTA)
    subsampling   metric vs number of training libraries (mean, 95 % CI)
    figures       PR curves, delta-auPRC histograms, KDE scatter, subsampling curves
    report        Markdown/HTML report of figures and tables
    baseline      MotifPredictor, a model-free deterministic Predictor (tests, floor)
    cli           `clipstore evaluate ...` and `clipstore score`
"""
