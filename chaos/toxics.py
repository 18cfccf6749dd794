"""Toxic and proxy configurations: the frozen records the fault proxy and its API share.

Owns: the closed set of toxic types with toxiproxy's attribute names, Go types and defaults
(``TOXIC_TYPES``); ``ToxicSpec`` and ``ProxySpec`` (what a toxic or proxy *is*, as the API shows
it); parsing a toxic's create/update body exactly as toxiproxy 2.12's ``AddToxicJson`` and
``UpdateToxicJson`` do, in the same order of checks so the same body gets the same error; and
``FaultProxyError``, an error with toxiproxy's message and HTTP status.

Failure it contains: an invalid toxic (bad stream, unknown type, mistyped attribute). It is
refused here with toxiproxy's status and message before any live connection sees it.

May import: the standard library, attrs, chaos._gojson.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Final, Literal

import attrs

from chaos._gojson import FieldType, GoJsonError, decode_body, decode_fields, float32, json_kind, mismatch

__all__ = [
    "TOXIC_TYPES",
    "Direction",
    "FaultProxyError",
    "ProxySpec",
    "ToxicSchema",
    "ToxicSpec",
    "parse_direction",
    "parse_new_toxic",
    "parse_toxic_update",
]

Direction = Literal["upstream", "downstream"]


class FaultProxyError(Exception):
    """A refusal with toxiproxy's wording and HTTP status (``proxy not found``, 404)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def bad_body(exc: GoJsonError) -> FaultProxyError:
    return FaultProxyError(f"bad request body: {exc}", 400)


PROXY_NOT_FOUND: Final = ("proxy not found", 404)
PROXY_EXISTS: Final = ("proxy already exists", 409)
INVALID_STREAM: Final = ("stream was invalid, can be either upstream or downstream", 400)
INVALID_TYPE: Final = ("invalid toxic type", 400)
TOXIC_EXISTS: Final = ("toxic already exists", 409)
TOXIC_NOT_FOUND: Final = ("toxic not found", 404)


@attrs.frozen
class ToxicSchema:
    """A toxic type: its Go struct name (for error messages) and attributes in JSON order."""

    go_struct: str
    attributes: tuple[tuple[str, FieldType], ...]


TOXIC_TYPES: Final[Mapping[str, ToxicSchema]] = {
    "latency": ToxicSchema("LatencyToxic", (("latency", "int64"), ("jitter", "int64"))),
    "bandwidth": ToxicSchema("BandwidthToxic", (("rate", "int64"),)),
    "slow_close": ToxicSchema("SlowCloseToxic", (("delay", "int64"),)),
    "timeout": ToxicSchema("TimeoutToxic", (("timeout", "int64"),)),
    "reset_peer": ToxicSchema("ResetToxic", (("timeout", "int64"),)),
    "slicer": ToxicSchema(
        "SlicerToxic", (("average_size", "int"), ("size_variation", "int"), ("delay", "int"))
    ),
    "limit_data": ToxicSchema("LimitDataToxic", (("bytes", "int64"),)),
    "noop": ToxicSchema("NoopToxic", ()),
}


def parse_direction(stream: str) -> Direction | None:
    """toxiproxy's ``stream.ParseDirection``: case-insensitive, anything else is invalid."""
    folded = stream.lower()
    if folded == "upstream":
        return "upstream"
    if folded == "downstream":
        return "downstream"
    return None


@attrs.frozen
class ToxicSpec:
    """One toxic as configured. ``stream`` is kept as the client spelled it (toxiproxy echoes
    ``UpStream`` back); ``direction`` is what it means. ``toxicity`` is already float32."""

    name: str
    type: str
    stream: str
    toxicity: float = 1.0
    attributes: tuple[tuple[str, int], ...] = ()

    @property
    def direction(self) -> Direction:
        direction = parse_direction(self.stream)
        assert direction is not None, "a ToxicSpec is only built from a valid stream"
        return direction

    def attr(self, key: str) -> int:
        return dict(self.attributes).get(key, 0)

    def as_json(self) -> dict[str, object]:
        """toxiproxy's ``ToxicWrapper`` field order: attributes, name, type, stream, toxicity."""
        return {
            "attributes": dict(self.attributes),
            "name": self.name,
            "type": self.type,
            "stream": self.stream,
            "toxicity": self.toxicity,
        }

    @classmethod
    def build(
        cls,
        type: str,
        stream: str = "downstream",
        name: str | None = None,
        toxicity: float = 1.0,
        attributes: Mapping[str, int] | None = None,
    ) -> ToxicSpec:
        """For in-process callers (the chaos runner): validated like an API request."""
        body: dict[str, object] = {"type": type, "stream": stream, "toxicity": toxicity,
                                   "attributes": dict(attributes or {})}
        if name is not None:
            body["name"] = name
        return parse_new_toxic(json.dumps(body).encode(), existing_names=())


@attrs.frozen
class ProxySpec:
    """A proxy as configured (``listen`` as requested; the live proxy shows the bound one)."""

    name: str
    upstream: str
    listen: str = ""
    enabled: bool = True


_WRAPPER_FIELDS: Final[dict[str, FieldType]] = {
    "name": "string", "type": "string", "stream": "string", "toxicity": "float32",
}


def _attributes(
    schema: ToxicSchema, raw: object, start: dict[str, int], struct_name: str
) -> tuple[tuple[str, int], ...]:
    values = dict(start)
    if raw is not None:
        if not isinstance(raw, dict):
            raise GoJsonError(
                f"json: cannot unmarshal {json_kind(raw)} into Go struct field {struct_name}.attributes "
                f"of type toxics.{schema.go_struct}"
            )
        decoded = decode_fields(raw, dict(schema.attributes), schema.go_struct, "attributes.")
        values.update({k: int(v) for k, v in decoded.items()})  # type: ignore[call-overload]
    return tuple((key, values.get(key, 0)) for key, _ in schema.attributes)


def _attributes_raw(obj: dict[str, object]) -> object:
    for key, value in obj.items():
        if key.casefold() == "attributes":
            return value
    return None


def parse_new_toxic(body: bytes, existing_names: object) -> ToxicSpec:
    """``POST /proxies/{p}/toxics``: the checks of toxiproxy's ``AddToxicJson``, in its order.

    ``existing_names`` is anything supporting ``in`` (the proxy's toxic names, both streams).
    """
    try:
        value = decode_body(body)
        if not isinstance(value, dict):
            raise mismatch(value, "toxics.ToxicWrapper")
        fields = decode_fields(value, _WRAPPER_FIELDS, "ToxicWrapper")
        raw_attributes = _attributes_raw(value)
        if raw_attributes is not None and not isinstance(raw_attributes, dict):
            raise GoJsonError(
                f"json: cannot unmarshal {json_kind(raw_attributes)} into Go struct field "
                "ToxicWrapper.attributes of type toxics.NoopToxic"
            )
    except GoJsonError as exc:
        raise bad_body(exc) from None
    stream = str(fields.get("stream", "downstream"))
    if parse_direction(stream) is None:
        raise FaultProxyError(*INVALID_STREAM)
    toxic_type = str(fields.get("type", ""))
    name = str(fields.get("name", "")) or f"{toxic_type}_{stream}"
    schema = TOXIC_TYPES.get(toxic_type)
    if schema is None:
        raise FaultProxyError(*INVALID_TYPE)
    if name in existing_names:  # type: ignore[operator]
        raise FaultProxyError(*TOXIC_EXISTS)
    try:
        attributes = _attributes(schema, raw_attributes, {}, "")
    except GoJsonError as exc:
        raise bad_body(exc) from None
    toxicity = fields.get("toxicity", 1.0)
    assert isinstance(toxicity, float)
    return ToxicSpec(name=name, type=toxic_type, stream=stream, toxicity=toxicity, attributes=attributes)


def parse_toxic_update(body: bytes, current: ToxicSpec) -> ToxicSpec:
    """``PATCH /proxies/{p}/toxics/{t}``: only ``attributes`` and ``toxicity`` change; unspecified
    attributes keep their values (toxiproxy's ``UpdateToxicJson``)."""
    schema = TOXIC_TYPES[current.type]
    try:
        value = decode_body(body)
        if not isinstance(value, dict):
            raise mismatch(value, "struct { Attributes interface {} \"json:\\\"attributes\\\"\"; "
                                  "Toxicity float32 \"json:\\\"toxicity\\\"\" }")
        attributes = _attributes(schema, _attributes_raw(value), dict(current.attributes), "")
        fields = decode_fields(value, {"toxicity": "float32"}, "")
    except GoJsonError as exc:
        raise bad_body(exc) from None
    toxicity = fields.get("toxicity", current.toxicity)
    assert isinstance(toxicity, float)
    return attrs.evolve(current, attributes=attributes, toxicity=float32(toxicity))
