"""Supervision with Erlang/OTP semantics: supervisors and the dynamic supervisor, restart policy,
backoff, intensity, the circuit breaker and the supervision event bus.

Imports nothing of the project: it is the bottom of the dependency graph.
"""
