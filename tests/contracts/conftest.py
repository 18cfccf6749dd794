"""Shared fixtures: the programs built once per session (a missing clang-19 FAILS, it does not skip:
CI installs it), and a fresh LiteSVM test bed per test with both programs really deployed."""

from __future__ import annotations

from pathlib import Path

import pytest

from contracts.build import PROGRAMS_DIR, build_program, ensure_built
from contracts.testbed import Testbed

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="session")
def programs() -> dict[str, Path]:
    return ensure_built()


@pytest.fixture(scope="session")
def probe_program(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_program(HERE / "u128_probe.c", tmp_path_factory.mktemp("probe"), (PROGRAMS_DIR,))


@pytest.fixture
def bed(programs: dict[str, Path]) -> Testbed:
    return Testbed.create(programs)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "anchorpy: runs anchorpy 0.21 in its own virtualenv (~/.cache/xorj/anchorpy-venv); needs PyPI access "
        "the first time",
    )
