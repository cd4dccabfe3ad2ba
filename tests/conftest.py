"""Session fixtures shared by the whole suite: one small simulated cohort and one store built
from it, and the build tests' hand-written cohort and its in-process build, so that every test
reads real files and a real Zarr store (built once, read many times).
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def real_data(*parts: str) -> Path:
    """Path under ../shared/data/real, or skip the test with a clear reason when it is absent."""
    p = REAL.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"real test data not present at {p} (it lives beside the repo, not in it)")
    return p


@pytest.fixture(scope="session")
def sim(tmp_path_factory):
    """A small seeded cohort in the real file formats (clipstore simulate defaults)."""
    from clipstore.simulate import simulate

    return simulate(tmp_path_factory.mktemp("sim") / "cohort", seed=0)


@pytest.fixture(scope="session")
def store(sim, tmp_path_factory) -> str:
    """A complete store built from `sim` (read-only for tests: copy it before mutating)."""
    from clipstore.build import build

    out = str(tmp_path_factory.mktemp("store") / "store.zarr")
    build(sim.config, out, workers=1, quiet=True)
    return out


@pytest.fixture(scope="session")
def cohort(tmp_path_factory) -> dict:
    """The build tests' small cohort (tests/_build_inputs.write_cohort defaults); read-only."""
    from tests._build_inputs import write_cohort

    return write_cohort(tmp_path_factory.mktemp("cohort"))


@pytest.fixture(scope="session")
def built(cohort, tmp_path_factory):
    """(store path, BuildSummary) of `cohort` built in-process with one worker: the store every
    other build of it (2 workers, clusters, buckets, resumed) must equal bit for bit."""
    from clipstore.build import build

    out = str(tmp_path_factory.mktemp("built") / "store.zarr")
    return out, build(str(cohort["config"]), out, workers=1, quiet=True)


@pytest.fixture(scope="session")
def quick_demo(tmp_path_factory) -> Path:
    """One `clipstore demo --quick` output folder per session (a second request resumes it,
    which is instant: every stage is already done)."""
    out = tmp_path_factory.getbasetemp() / "demo_quick"
    from tests.test_demo import run_cli

    res = run_cli("demo", "--quick", "--out", str(out))
    assert res.returncode == 0, res.stderr[-3000:]
    (out / "stdout.txt").write_text(res.stdout)
    (out / "stderr.txt").write_text(res.stderr)
    return out
