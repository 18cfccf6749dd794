"""The benchmark report: figures, the machine they were measured on, and the commit."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from pathlib import Path
from typing import Any, Literal

import attrs


@attrs.frozen
class Figure:
    value: float
    unit: str
    better: Literal["lower", "higher"]
    target: float | None = None


def _commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip()


def write_report(suite: str, figures: dict[str, Figure], out: Path) -> dict[str, Any]:
    report: dict[str, Any] = {
        "suite": suite,
        "commit": _commit(),
        "machine": {
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "figures": {name: attrs.asdict(fig) for name, fig in figures.items()},
    }
    out.write_text(json.dumps(report, indent=2) + "\n")
    return report
