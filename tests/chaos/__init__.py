"""Tests of the chaos harness: the toxiproxy-compatible fault proxy and the toxiproxy client."""
