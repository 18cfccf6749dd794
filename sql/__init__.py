"""Numbered SQL migrations and the migration runner (`xorj migrate`), and the database contract.

- `sql/migrations/NNNN_name.sql`: the schema, applied in order, never edited once applied.
- `sql.migrate`: the runner (`migrate(gateway)`), checksummed and serialised by an advisory lock.
- `sql.errors`: the typed errors the Postgres gateway raises (`DatabaseUnavailable`,
  `UniqueViolation`, ...). They live here, in a leaf package, so actors can catch them without
  importing `engine`.
- `sql.statements`: `Statement` and the `Script` marker for the gateway's batched `transaction`.

May import: the standard library and attrs. No database driver: the runner talks through any
object with the gateway's `fetch` and `transaction` (`sql.migrate.MigrationTarget`).
"""
