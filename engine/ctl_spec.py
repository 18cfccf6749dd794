"""What one ``xorj ctl`` sub-command is: its arguments, options and how its result prints.

Owns: `CtlCommand`, `CtlArgument`, `CtlOption`, `render_generic` and `said`. Each command family
(`engine.user_commands`, `engine.trading_commands`, ...) declares its own ``CTL`` tuple of
`CtlCommand` next to the engine-side handlers; `engine.ctl` puts them into one table.

May import: the standard library and attrs.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping

import attrs

__all__ = ["CtlArgument", "CtlCommand", "CtlOption", "Renderer", "render_generic", "said"]

Renderer = Callable[[object, Mapping[str, object]], str]


@attrs.frozen
class CtlArgument:
    """A positional, string-valued argument, sent to the engine under the same name."""

    name: str
    help: str
    optional: bool = False  # may be left out (then it is not sent)


@attrs.frozen
class CtlOption:
    """A ``--flag VALUE`` option of type ``kind`` (int, float or str; ``choices`` limit a str),
    sent under ``name`` when given. The engine validates it again: the socket is the real edge."""

    flag: str
    name: str
    help: str
    kind: type = int
    choices: tuple[str, ...] | None = None


def render_generic(result: object, _args: Mapping[str, object]) -> str:
    """``key: value`` lines for objects (nested objects indented), the value itself otherwise."""
    if not isinstance(result, dict):
        return result if isinstance(result, str) else json.dumps(result)
    lines: list[str] = []

    def walk(obj: Mapping[str, object], depth: int) -> None:
        for key, value in obj.items():
            if isinstance(value, dict) and value:
                lines.append(f"{'  ' * depth}{key}:")
                walk(value, depth + 1)
            else:
                shown = value if isinstance(value, str) else json.dumps(value)
                lines.append(f"{'  ' * depth}{key}: {shown}")

    walk(result, 0)
    return "\n".join(lines)



def said(template: str) -> Renderer:
    def render(result: object, args: Mapping[str, object]) -> str:
        if isinstance(result, str):
            return result
        return template.format(**args)

    return render


@attrs.frozen
class CtlCommand:
    """One ``xorj ctl`` sub-command: the control-socket command it sends and how it prints."""

    name: str
    help: str
    arguments: tuple[CtlArgument, ...] = ()
    render: Renderer = render_generic
    options: tuple[CtlOption, ...] = ()


