"""Tests of the database and Redis infrastructure against real embedded servers."""
