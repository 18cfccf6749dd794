"""Tests for the operator-facing edges: config, logs, metrics/health HTTP, control socket, ctl."""
