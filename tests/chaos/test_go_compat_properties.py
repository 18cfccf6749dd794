"""Properties of the pieces that imitate Go: the slicer's cut points and the JSON codec."""

from __future__ import annotations

import itertools
import json
import random
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chaos._gojson import encode
from chaos.fault_proxy import _slice_bounds
from chaos.toxics import FaultProxyError, ToxicSpec, parse_new_toxic


@given(size=st.integers(0, 5000), average=st.integers(0, 300), variation=st.integers(0, 100),
       seed=st.integers(0, 2**32))
def test_slicer_pieces_cover_the_data_in_order_without_gaps(
    size: int, average: int, variation: int, seed: int
) -> None:
    bounds = _slice_bounds(0, size, average, variation, random.Random(seed))
    assert bounds[0][0] == 0 and bounds[-1][1] == size
    assert all(end == next_start for (_, end), (next_start, _) in itertools.pairwise(bounds))
    assert all(start < end for start, end in bounds) or size == 0


@given(st.floats(min_value=0, max_value=1e6, allow_nan=False, width=32))
def test_toxicity_is_printed_as_the_shortest_float32_spelling(value: float) -> None:
    spec = parse_new_toxic(json.dumps({"type": "noop", "toxicity": value}).encode(), ())
    printed = json.loads(encode(spec.as_json()))["toxicity"]
    assert struct.unpack("f", struct.pack("f", float(printed)))[0] == value
    assert isinstance(printed, int) == float(value).is_integer()


def test_stream_is_case_insensitive_and_echoed_as_sent() -> None:
    spec = parse_new_toxic(b'{"type":"latency","stream":"UpStream"}', ())
    assert (spec.name, spec.stream, spec.direction) == ("latency_UpStream", "UpStream", "upstream")


@pytest.mark.parametrize(("body", "message"), [
    (b'{"type":"latency","attributes":{"latency":1.5}}',
     "bad request body: json: cannot unmarshal number 1.5 into Go struct field "
     "LatencyToxic.attributes.latency of type int64"),
    (b'{"type":"slicer","attributes":{"delay":true}}',
     "bad request body: json: cannot unmarshal bool into Go struct field "
     "SlicerToxic.attributes.delay of type int"),
    (b'{"type":"latency","toxicity":"high"}',
     "bad request body: json: cannot unmarshal string into Go struct field "
     "ToxicWrapper.toxicity of type float32"),
    (b'[]', "bad request body: json: cannot unmarshal array into Go value of type toxics.ToxicWrapper"),
    (b'{"type":', "bad request body: unexpected EOF"),
    (b'nope', "bad request body: invalid character 'n' looking for beginning of value"),
])
def test_bad_toxic_bodies_get_gos_messages(body: bytes, message: str) -> None:
    with pytest.raises(FaultProxyError) as caught:
        parse_new_toxic(body, ())
    assert (caught.value.status, caught.value.message) == (400, message)


def test_in_process_toxics_are_validated_like_api_ones() -> None:
    assert ToxicSpec.build("bandwidth", attributes={"rate": 5}).attr("rate") == 5
    with pytest.raises(FaultProxyError):
        ToxicSpec.build("bandwidth", stream="both")
