"""Go's encoding/json as toxiproxy's clients see it: decoding errors and encoding quirks.

Owns: turning a request body into Python values the way Go's ``json.Decoder.Decode`` would
accept or refuse it (first value only, case-insensitive field names, ``null`` keeps the default,
integers refused when they carry a fraction or exponent) and rendering the refusal with Go's
message (``json: cannot unmarshal string into Go struct field LatencyToxic.attributes.latency of
type int64``); and encoding responses like ``json.Marshal`` (compact, ``<>&`` escaped, float32
printed with the fewest digits that round-trip).

Failure it contains: a malformed or mistyped body. Every such body becomes one ``GoJsonError``
carrying Go's wording, never a Python traceback or a half-applied update.

May import: the standard library and attrs.
"""

from __future__ import annotations

import json
import math
import re
import struct
from typing import Final, Literal

import attrs

__all__ = [
    "FieldType",
    "GoJsonError",
    "GoNumber",
    "decode_body",
    "decode_fields",
    "encode",
    "float32",
    "json_kind",
    "mismatch",
]

FieldType = Literal["string", "bool", "int64", "int", "float32"]

_INT_LITERAL: Final = re.compile(r"-?(0|[1-9][0-9]*)")
_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1
_FLOAT32_MAX: Final = 3.4028234663852886e38


class GoJsonError(Exception):
    """A body Go's decoder would refuse; ``str()`` is Go's message."""


@attrs.frozen
class GoNumber:
    """A JSON number kept as its literal, so int fields can refuse ``1.5`` the way Go does."""

    literal: str


def _no_constant(name: str) -> object:
    raise ValueError(name)


_DECODER: Final = json.JSONDecoder(
    parse_int=GoNumber, parse_float=GoNumber, parse_constant=_no_constant, strict=True
)


def decode_body(body: bytes) -> object:
    """The first JSON value in ``body``, as ``json.NewDecoder(body).Decode`` reads it."""
    text = body.decode("utf-8", errors="replace")
    index = len(text) - len(text.lstrip(" \t\r\n"))
    if index == len(text):
        raise GoJsonError("EOF")
    try:
        value, _ = _DECODER.raw_decode(text, index)
    except json.JSONDecodeError as exc:
        if exc.pos >= len(text.rstrip(" \t\r\n")):
            raise GoJsonError("unexpected EOF") from None
        char = text[exc.pos]
        message = f"invalid character {_go_quote_char(char)} looking for beginning of value"
        raise GoJsonError(message) from None
    except ValueError as exc:  # NaN / Infinity: not JSON for Go either
        raise GoJsonError(f"invalid character '{str(exc)[:1]}' looking for beginning of value") from None
    return value


def _go_quote_char(char: str) -> str:
    if char == "'":
        return "'\\''"
    if char == '"':
        return "'\"'"
    if char.isprintable():
        return f"'{char}'"
    return "'" + char.encode("unicode_escape").decode() + "'"


def json_kind(value: object) -> str:
    """Go's name for a JSON value's kind in unmarshal errors."""
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "bool"
    return "number"


def mismatch(value: object, go_type: str) -> GoJsonError:
    """The error for a top-level value of the wrong kind (``Go value of type ...``)."""
    return GoJsonError(f"json: cannot unmarshal {json_kind(value)} into Go value of type {go_type}")


def float32(value: float) -> float:
    """``value`` rounded to the nearest float32, as Go stores ``toxicity``."""
    if math.isinf(value) or math.isnan(value) or abs(value) > _FLOAT32_MAX:
        return value
    rounded: float = struct.unpack("f", struct.pack("f", value))[0]
    return rounded


def _field_error(kind: str, struct_name: str, path: str, go_type: str) -> GoJsonError:
    return GoJsonError(
        f"json: cannot unmarshal {kind} into Go struct field {struct_name}.{path} of type {go_type}"
    )


def _convert(value: object, field_type: FieldType, struct_name: str, path: str) -> object:
    if field_type == "string":
        if isinstance(value, str):
            return value
        raise _field_error(json_kind(value), struct_name, path, "string")
    if field_type == "bool":
        if isinstance(value, bool):
            return value
        raise _field_error(json_kind(value), struct_name, path, "bool")
    if not isinstance(value, GoNumber):
        raise _field_error(json_kind(value), struct_name, path, field_type)
    if field_type == "float32":
        number = float(value.literal)
        if abs(number) > _FLOAT32_MAX:
            raise _field_error(f"number {value.literal}", struct_name, path, "float32")
        return float32(number)
    if not _INT_LITERAL.fullmatch(value.literal):
        raise _field_error(f"number {value.literal}", struct_name, path, field_type)
    integer = int(value.literal)
    if not _INT64_MIN <= integer <= _INT64_MAX:
        raise _field_error(f"number {value.literal}", struct_name, path, field_type)
    return integer


def decode_fields(
    obj: dict[str, object],
    fields: dict[str, FieldType],
    struct_name: str,
    path_prefix: str = "",
) -> dict[str, object]:
    """The known fields present in ``obj`` (matched case-insensitively, the last one winning),
    converted to Python values; ``null`` and unknown keys are skipped, as Go does."""
    by_fold = {name.casefold(): name for name in fields}
    out: dict[str, object] = {}
    for key, value in obj.items():
        name = key if key in fields else by_fold.get(key.casefold())
        if name is None or value is None:
            continue
        out[name] = _convert(value, fields[name], struct_name, path_prefix + name)
    return out


def _go_float(value: float) -> int | float:
    """The Python number whose ``json.dumps`` spelling equals Go's for this float32."""
    if value.is_integer() and abs(value) < 1e21:
        return int(value)
    for digits in range(1, 10):
        text = f"{value:.{digits}g}"
        if float32(float(text)) == value:
            return float(text)
    return value


def encode(payload: object) -> bytes:
    """``json.Marshal(payload)``: compact, HTML-escaped; floats are float32 fields."""

    def fix(value: object) -> object:
        if isinstance(value, float):
            return _go_float(value)
        if isinstance(value, dict):
            return {k: fix(v) for k, v in value.items()}
        if isinstance(value, list):
            return [fix(v) for v in value]
        return value

    text = json.dumps(fix(payload), separators=(",", ":"), ensure_ascii=False)
    for raw, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                         ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(raw, escaped)
    return text.encode()
