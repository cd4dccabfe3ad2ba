"""Helpers every subcommand shares, whichever package defines it (knows no subcommand itself)."""
from __future__ import annotations

import click


def is_quiet() -> bool:
    """Whether progress bars should stay hidden (set by the `clipstore` group's --quiet)."""
    ctx = click.get_current_context(silent=True)
    return bool(ctx and ctx.find_root().obj and ctx.find_root().obj.get("quiet"))
