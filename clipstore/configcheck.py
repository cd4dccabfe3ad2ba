"""One small validation layer for every config (build and train): types, ranges and choices
declared per key, relations checked by the caller on keys that passed, and EVERY problem
reported at once with its key, as one InputError (exit 2).

Why not pydantic: it is not a dependency, and both configs are flat mappings of scalars whose
rules fit in a table; a frozen dataclass stays the config object either way.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from .errors import InputError

NONE = type(None)


@dataclass(frozen=True)
class Rule:
    """What one key accepts. `low`/`high` are inclusive; `positive` means > 0."""
    types: tuple[type, ...]
    required: bool = False
    low: float | None = None
    high: float | None = None
    positive: bool = False
    choices: tuple | None = None


def _type_names(types: Iterable[type]) -> str:
    return " or ".join("null" if t is NONE else t.__name__ for t in types)


def _is(value: Any, types: tuple[type, ...]) -> bool:
    """isinstance, except that a bool is not an int and an int is a fine float."""
    if isinstance(value, bool):
        return bool in types
    if isinstance(value, int) and float in types:
        return True
    return isinstance(value, types)


def problems_of(raw: Mapping[str, Any], rules: Mapping[str, Rule]
                ) -> tuple[list[str], set[str]]:
    """(one "key: problem" line per problem, the keys whose values passed every rule)."""
    problems: list[str] = []
    unknown = sorted(set(raw) - set(rules))
    if unknown:
        problems.append(f"unknown option(s) {unknown} (known options: {sorted(rules)})")
    for key, rule in rules.items():
        if rule.required and raw.get(key) is None:
            problems.append(f"missing required option '{key}'")
    ok: set[str] = set()
    for key, value in raw.items():
        rule = rules.get(key)
        if rule is None or (value is None and rule.required):
            continue
        msg = _check(value, rule)
        if msg:
            problems.append(f"{key} {msg}, got {value!r}")
        else:
            ok.add(key)
    return problems, ok


def _check(value: Any, rule: Rule) -> str | None:
    if not _is(value, rule.types):
        return f"must be {_type_names(rule.types)}"
    if value is None or isinstance(value, (bool, dict, list)):
        return None
    if rule.choices is not None:
        return None if value in rule.choices else \
            f"must be {' or '.join(str(c) for c in rule.choices)}"
    if isinstance(value, str):
        return None
    if rule.low is not None and rule.high is not None and not rule.low <= value <= rule.high:
        return f"must be {rule.low}..{rule.high}"
    if (rule.positive or rule.low == 1) and value <= 0:
        return "must be positive"
    if rule.low is not None and value < rule.low:
        return f"must be >= {rule.low}"
    return None


def raise_problems(problems: list[str], source: str, hint: str | None = None) -> None:
    """One InputError listing every problem (nothing when the list is empty)."""
    if not problems:
        return
    what = problems[0] if len(problems) == 1 else \
        f"{len(problems)} problems: " + "; ".join(problems)
    raise InputError(what, file=source,
                     hint=hint or "fix these keys in the config (or the matching flags)")
