"""Building the on-chain programs: clang-19 for the BPF target, then the project's SBF linker.

Owns: the compiler flags, where sources and outputs live, and the rebuild rule (a program is
rebuilt when its source or any shared header is newer than the output). `ensure_built()` is what
tests, benchmarks and the local chain call; `xorj contracts build` calls `build_all()`.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from contracts.sbf_linker import link_files

PROGRAMS_DIR = Path(__file__).resolve().parent / "programs"
DEFAULT_OUT = Path(__file__).resolve().parent / "build"
PROGRAM_NAMES = ("vault", "amm")
CLANG = "clang-19"

# -mcpu=v2: v3 emits 32-bit jumps the SBF verifier rejects. The stack flag raises clang's 512-byte
# frame limit to the 4 KiB an SBF frame really has.
CFLAGS = (
    "-target",
    "bpf",
    "-mcpu=v2",
    "-O2",
    "-fno-builtin",
    "-ffreestanding",
    "-nostdlib",
    "-mllvm",
    "-bpf-stack-size=4096",
    "-Wall",
    "-Wextra",
    "-Werror",
)


class BuildError(Exception):
    """The compiler is missing or failed, or the linker refused the objects."""


def _clang() -> str:
    path = shutil.which(CLANG)
    if path is None:
        raise BuildError(
            f"{CLANG} not found: install it with `apt-get install -y clang-19 lld-19 llvm-19` "
            "(listed in .ci/apt-packages.txt)"
        )
    return path


def _newest_input(source: Path, include_dirs: tuple[Path, ...]) -> float:
    inputs = [source, *(h for d in include_dirs for h in d.glob("*.h"))]
    return max(p.stat().st_mtime for p in inputs)


def compile_c(
    source: Path,
    obj: Path,
    include_dirs: tuple[Path, ...] = (PROGRAMS_DIR,),
    extra_flags: tuple[str, ...] = (),
) -> None:
    """clang-19 for the BPF target: one C file to one relocatable object."""
    cmd = [
        _clang(),
        *CFLAGS,
        *extra_flags,
        *(f"-I{d}" for d in include_dirs),
        "-c",
        str(source),
        "-o",
        str(obj),
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BuildError(f"compiling {source.name} failed:\n{result.stderr}")


def build_program(
    source: Path, out_dir: Path, include_dirs: tuple[Path, ...] = (PROGRAMS_DIR,), force: bool = False
) -> Path:
    """Compile and link one C program; return the path of its `.so`. Skips work when up to date."""
    out_dir.mkdir(parents=True, exist_ok=True)
    so = out_dir / f"{source.stem}.so"
    if not force and so.exists() and so.stat().st_mtime >= _newest_input(source, include_dirs):
        return so
    # Private object and output names, then an atomic rename: concurrent builds (tests, the local
    # chain) never see or link a half-written file.
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=f".{source.stem}-") as work:
        obj = Path(work) / f"{source.stem}.o"
        compile_c(source, obj, include_dirs)
        tmp = Path(work) / f"{source.stem}.so"
        link_files([obj], tmp)
        tmp.replace(so)
    return so


def build_all(out_dir: Path = DEFAULT_OUT, force: bool = False) -> dict[str, Path]:
    """Build every program in `contracts/programs/`; return name -> `.so` path."""
    return {name: build_program(PROGRAMS_DIR / f"{name}.c", out_dir, force=force) for name in PROGRAM_NAMES}


def ensure_built(out_dir: Path = DEFAULT_OUT) -> dict[str, Path]:
    """The programs, rebuilt first if a source changed since the last build."""
    return build_all(out_dir, force=False)
