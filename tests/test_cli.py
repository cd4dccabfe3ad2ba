"""The `clipstore` command itself: every subcommand (the library's and the plug-ins') answers
`--help`, and a bad argument fails with exit 2 in under 3 s of CPU without importing TensorFlow."""
from __future__ import annotations

import resource
import subprocess
import sys

import pytest

from clipstore.cli import CORE, commands
from tests.test_evaluation_cli_fast import PROBE


def _run(*args: str) -> tuple[subprocess.CompletedProcess, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    r = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True,
                       timeout=120)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def test_every_package_registers_its_commands():
    assert {"train", "predict", "evaluate", "score", "demo"} <= set(commands()) - set(CORE)


@pytest.mark.parametrize("name", sorted(commands()))
def test_a_bad_option_fails_fast_without_tensorflow(name):
    r, cpu = _run(name, "--no-such-option")
    assert r.returncode == 2 and "no such option" in r.stderr.lower(), r.stderr
    assert "TF_NOT_IMPORTED" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert cpu < 3.0, f"{name}: {cpu:.1f} s of CPU"


@pytest.mark.parametrize("args", [("build", "no_such.yaml"), ("info", "no_such.zarr"),
                                  ("validate", "no_such.zarr"),
                                  ("folds", "no_such.zarr", "--scheme", "blocks"),
                                  ("simulate", "--seed", "x", "out")])
def test_core_commands_name_what_is_wrong(args, tmp_path):
    r, cpu = _run(*[a if not a.startswith("no_such") else str(tmp_path / a) for a in args])
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert "no_such" in r.stderr or "seed" in r.stderr, r.stderr
    assert "TF_NOT_IMPORTED" in r.stderr and cpu < 3.0
