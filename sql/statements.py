"""The statement shapes the Postgres gateway accepts in a batch (`transaction`).

Owns: `Statement` (SQL text and its positional arguments) and the `Script` marker. A `Script` is
run with PostgreSQL's simple query protocol, which allows several `;`-separated statements but no
arguments and returns no rows -- exactly what a migration file needs. Plain strings are run with
the extended protocol (arguments, rows returned).

May import: the standard library only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeAlias

__all__ = ["Script", "Statement"]


class Script(str):
    """SQL text to run with the simple query protocol: many statements, no arguments, no rows."""

    __slots__ = ()


Statement: TypeAlias = tuple[str, Sequence[object]]
