"""`xorj contracts build`: compiles and links both programs, rebuilds only when a source changed,
and says clearly when clang-19 is missing."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import contracts.build as build
from contracts.cli import register


def test_build_produces_both_programs(tmp_path: Path) -> None:
    built = build.build_all(tmp_path, force=True)
    assert set(built) == {"vault", "amm"}
    for path in built.values():
        assert path.read_bytes()[:4] == b"\x7fELF"


def test_a_program_is_rebuilt_only_when_a_source_is_newer(tmp_path: Path) -> None:
    src_dir = tmp_path / "src"
    shutil.copytree(build.PROGRAMS_DIR, src_dir)
    out = tmp_path / "out"
    so = build.build_program(src_dir / "amm.c", out, (src_dir,))
    first = so.stat().st_mtime_ns
    os.utime(so, ns=(first + 10**9, first + 10**9))
    build.build_program(src_dir / "amm.c", out, (src_dir,))
    assert so.stat().st_mtime_ns == first + 10**9  # up to date: untouched
    header = src_dir / "u128.h"
    os.utime(header, ns=(first + 5 * 10**9, first + 5 * 10**9))
    build.build_program(src_dir / "amm.c", out, (src_dir,))
    assert so.stat().st_mtime_ns != first + 10**9  # a header changed: rebuilt


def test_a_missing_compiler_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(build, "CLANG", "clang-19-is-not-installed")
    with pytest.raises(build.BuildError, match="apt-get install -y clang-19"):
        build.build_program(build.PROGRAMS_DIR / "amm.c", tmp_path, force=True)


def test_the_cli_registers_contracts_build(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser(prog="xorj")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["contracts", "build", "--out", str(tmp_path), "--force"])
    assert args.handler(args) == 0
    assert (tmp_path / "vault.so").exists() and (tmp_path / "amm.so").exists()


def test_python_m_contracts_build_works(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "contracts", "build", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(build.__file__).parents[1],
    )
    assert result.returncode == 0, result.stderr
    assert "vault" in result.stdout and "amm" in result.stdout
