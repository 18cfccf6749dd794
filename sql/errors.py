"""The typed database errors every caller of the Postgres gateway catches.

Owns: the error vocabulary of the database boundary. They live here, in the leaf package `sql`,
not in `engine`, so that actors (which may not import `engine`) and the migration runner can catch
them; `engine.postgres_gateway` raises them and re-exports them. No asyncpg type ever crosses the
gateway: a driver error is translated into one of these or into `DatabaseQueryError`.

Failure it contains: none by itself; it makes "the database is unreachable" (retry later, pause
trading) distinguishable from "the database refused this row" (a bug or a duplicate, never
retried blindly).

May import: the standard library only.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "ROW_ERRORS",
    "CheckViolation",
    "DatabaseError",
    "DatabaseQueryError",
    "DatabaseTimeout",
    "DatabaseUnavailable",
    "ForeignKeyViolation",
    "IntegrityError",
    "NotNullViolation",
    "RestrictViolation",
    "UniqueViolation",
]


class DatabaseError(Exception):
    """Base of every error the Postgres gateway raises."""


class DatabaseUnavailable(DatabaseError):
    """The database cannot be reached now (not connected yet, connection lost, server down or
    restarting). Safe to retry later; whether the statement took effect is unknown if it was a
    write, so writes must be idempotent."""


class DatabaseTimeout(DatabaseUnavailable):
    """The call did not complete within its deadline; the work may or may not have happened."""


class DatabaseQueryError(DatabaseError):
    """The server rejected the statement for a reason other than a constraint (syntax, types,
    permissions, serialization). ``sqlstate`` is the five-character SQLSTATE code."""

    def __init__(self, message: str, *, sqlstate: str | None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


class IntegrityError(DatabaseError):
    """A constraint refused the row. ``constraint`` names it (or the trigger's declared name)."""

    def __init__(
        self, message: str, *, constraint: str | None, sqlstate: str | None, table: str | None
    ) -> None:
        super().__init__(message)
        self.constraint = constraint
        self.sqlstate = sqlstate
        self.table = table


class UniqueViolation(IntegrityError):
    """SQLSTATE 23505: a duplicate key."""


class CheckViolation(IntegrityError):
    """SQLSTATE 23514: a CHECK constraint, or a trigger refusing an illegal status transition."""


class ForeignKeyViolation(IntegrityError):
    """SQLSTATE 23503: a reference to a missing row, or deleting a referenced row."""


class NotNullViolation(IntegrityError):
    """SQLSTATE 23502: a required column was null."""


class RestrictViolation(IntegrityError):
    """SQLSTATE 23001: e.g. an UPDATE or DELETE on an append-only table."""


# What the server says about a statement's rows (a constraint, a bad value), not about the database:
# a multi-row statement refused with one of these is retried row by row to find whose row it was.
ROW_ERRORS: Final = (IntegrityError, DatabaseQueryError)
