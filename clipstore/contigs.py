"""Contig names across inputs: `chr22` in one file and `22` in another are the same chromosome.

Every input's names are mapped onto the reference FASTA's names (the store records those).
Explicit aliases win; otherwise an exact match, then the name with `chr` added or removed
(and `M`/`MT`); anything else is unresolved and the caller raises a clear error.
"""
from __future__ import annotations

from typing import Iterable, Mapping


def _candidates(name: str) -> list[str]:
    bare = name[3:] if name.lower().startswith("chr") else name
    out = [name, bare, f"chr{bare}"]
    if bare in ("M", "MT"):
        out += ["chrM", "MT", "M"]
    return out


def resolve(name: str, targets: Iterable[str], aliases: Mapping[str, str] | None = None
            ) -> str | None:
    """Name in `targets` that `name` refers to, or None when there is none."""
    targets = targets if isinstance(targets, (set, frozenset, dict)) else set(targets)
    aliases = aliases or {}
    if name in aliases and aliases[name] in targets:
        return aliases[name]
    for cand in _candidates(name):
        if cand in targets:
            return cand
    return None


def reverse_map(names: Iterable[str], targets: Iterable[str],
                aliases: Mapping[str, str] | None = None) -> dict[str, str]:
    """{target name: name in `names`} so that a reference contig can be looked up in another file.

    Aliases are applied in both directions (`{"22": "chr22"}` also maps FASTA `chr22` to `22`).
    """
    aliases = dict(aliases or {})
    both = {**aliases, **{v: k for k, v in aliases.items()}}
    targets = set(targets)
    out: dict[str, str] = {}
    for n in names:
        t = resolve(n, targets, both)
        if t is not None and t not in out:
            out[t] = n
    return out
