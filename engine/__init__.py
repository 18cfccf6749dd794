"""The engine process: config, the `xorj` CLI, node wiring (the supervision tree), the Postgres and
Redis gateways, metrics/health HTTP, the control socket and the embedded defaults.

May import: actors, supervisors, contracts, sql. Nothing imports `engine` except its own CLI.
"""
