"""The application layer above clipstore, trainer and evaluation: `clipstore demo`, the
paper's central comparison run end to end on a simulated cohort.

    plans.py     the plans (scale, schedule) and the runs each trains
    jsonio.py    stage messages and strict JSON files
    stages.py    simulate, build, train
    evaluate.py  metrics of each trained model, QTL and MPRA gains
    verdict.py   the rule on the claim, fixed before any run
    report.py    tables, Markdown summary and the report with its figures
    pipeline.py  run_demo: the stages in order, resumable
    cli.py       the click command registered as `clipstore demo`
"""
