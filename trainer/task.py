"""Entry point of a cloud training job: `python -m trainer.task --config train.yaml [...]`.

The same code path as `clipstore train`: the store is read through the clipstore reader (local
path or s3:// / gs:// URL) and the run folder is written locally and mirrored to the output URL
after every epoch, so a preempted job restarted with the same command resumes. Multi-worker jobs
set TF_CONFIG; every worker runs this same command (the chief writes the output).

Credentials come from the environment (AWS_* / GOOGLE_APPLICATION_CREDENTIALS / instance
metadata) or --storage-options JSON; they are never written to the manifest.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from clipstore.errors import InputError


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m trainer.task", description=__doc__.split("\n")[0])
    ap.add_argument("--config", required=True, help="training YAML (local path or URL)")
    ap.add_argument("--store", help="override the config's store URL")
    ap.add_argument("--output", help="override the config's output folder/URL (model dir)")
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                    help="override a config key (YAML value); repeatable")
    ap.add_argument("--storage-options", default=None,
                    help="JSON fsspec options for the store and the output (e.g. endpoint_url)")
    ap.add_argument("--fresh", action="store_true",
                    help="discard the output's checkpoint and train again from epoch 0")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args(argv)
    try:
        results = run(args)
    except InputError as e:
        print(f"error: {e.message()}", file=sys.stderr)
        return 2
    for r in results:
        print(json.dumps({"model": r.model_path, "manifest": r.manifest_path,
                          "epochs": r.epochs_run, "resumed_from": r.resumed_from}), flush=True)
    return 0


def run(args: argparse.Namespace):
    from .config import load_train_config, parse_override
    from .train import train_all

    overrides = dict(parse_override(s) for s in args.sets)
    if args.store:
        overrides["store"] = args.store
    if args.output:
        overrides["output"] = args.output
    for key in ("store", "output", "fine_tune_from"):   # command-line paths: relative to the cwd
        v = overrides.get(key)
        if isinstance(v, str) and "://" not in v:
            overrides[key] = os.path.abspath(v)
    if args.storage_options:
        try:
            overrides["storage_options"] = json.loads(args.storage_options)
        except json.JSONDecodeError as e:
            raise InputError(f"--storage-options is not JSON ({e})")
    cfg = load_train_config(_local_config(args.config, overrides.get("storage_options")),
                            **overrides)
    return train_all(cfg, quiet=not args.verbose, fresh=args.fresh)


def _local_config(path: str, storage_options: dict | None) -> str:
    """Configs may live in the bucket beside the store; fetch them to a temp file."""
    if "://" not in path:
        return path
    import tempfile

    import fsspec

    with fsspec.open(path, "rb", **(storage_options or {})) as fh:
        data = fh.read()
    tmp = tempfile.NamedTemporaryFile("wb", suffix=".yaml", delete=False)
    tmp.write(data)
    tmp.close()
    return tmp.name


if __name__ == "__main__":
    sys.exit(main())
