"""The chaos harness: toxiproxy client, the toxiproxy-compatible fault proxy, scenarios, invariants
and the `xorj chaos` runner. A tool that drives the engine from outside; nothing imports it.
"""
