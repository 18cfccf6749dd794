"""Executor tests (issue 6): the real engine node in-process against a real local chain, embedded
PostgreSQL and Redis, with Postgres and the RPC routed through the in-process fault proxy."""
