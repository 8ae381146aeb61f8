"""docs/protocol.md against the code it is the contract of.

The page must name every error code (`core/errors.py:ErrorCode`, with its
HTTP status), every close code (`core/protocol.py`'s `CLOSE_*`), every
client → server and server → client frame `type` (`INBOUND_TYPES`, the
`OutboundFrame` union) and every event kind, read from the code here, so a
new one fails this test until it is documented. Every ```json block of the
page must be a captured example (docs/capture_examples.py); the live test
captures again from a running server and checks that each example still has
the fresh capture's shape.
"""

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, get_args

import pytest

from core import outbound, protocol
from core.errors import HTTP_STATUS, ErrorCode
from core.events import EventKind

ROOT = Path(__file__).resolve().parents[1]
DOC = (ROOT / "docs" / "protocol.md").read_text()


def capture_module() -> ModuleType:
    """docs/capture_examples.py (docs/ is no package)."""
    name = "capture_examples"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "docs" / "capture_examples.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def section(title: str) -> str:
    """The text of the page's section `title`, up to the next heading of its level."""
    match = re.search(rf"^(#+) {re.escape(title)}\n(.*?)(?=^\1 |\Z)", DOC, re.M | re.S)
    assert match, f"protocol.md has no section {title!r}"
    return match[2]


def headings(direction: str) -> list[str]:
    return re.findall(rf"^## (.+) — {direction}$", DOC, re.M)


def frame_types(models: tuple[Any, ...]) -> set[str]:
    return {kind for model in models for kind in get_args(model.model_fields["type"].annotation)}


def outbound_models() -> tuple[Any, ...]:
    union, _ = get_args(outbound.OutboundFrame)
    return get_args(union)


def test_every_error_code_has_a_row_with_its_http_status() -> None:
    table = section("Error codes")
    missing = []
    for code in ErrorCode:
        row = re.search(rf"^\| `{code.value}` \|.*\| (\d{{3}})[^|]*\|$", table, re.M)
        if row is None:
            missing.append(code.value)
        else:
            assert int(row[1]) == HTTP_STATUS[code], f"{code.value}: the page says {row[1]}"
    assert not missing, f"protocol.md's error table lacks {missing}"


def test_every_close_code_has_a_row() -> None:
    table = section("Close codes")
    constants = {
        name: value
        for name, value in vars(protocol).items()
        if name.startswith("CLOSE_") and isinstance(value, int)
    }
    assert constants, "core/protocol.py defines no CLOSE_* constant"
    for name, value in constants.items():
        assert f"| **{value}** | `{name}` |" in table, f"{name} = {value} is not documented"


def test_every_inbound_frame_type_has_its_client_to_server_section() -> None:
    documented = {kind for heading in headings("client → server") for kind in heading.split(" / ")}
    assert set(protocol.INBOUND_TYPES) <= documented, set(protocol.INBOUND_TYPES) - documented
    assert frame_types(protocol.INBOUND_MODELS) == set(protocol.INBOUND_TYPES)


def test_every_outbound_frame_type_has_its_server_to_client_section() -> None:
    documented = {kind for heading in headings("server → client") for kind in heading.split(" / ")}
    types = frame_types(outbound_models())
    assert {"hello", "ack", "error", "typing"} <= types
    assert types <= documented, types - documented


def test_every_event_kind_is_listed_in_the_stream_and_has_its_section() -> None:
    stream = section("Reconnect and resume")
    server_sections = {k for heading in headings("server → client") for k in heading.split(" / ")}
    for kind in EventKind:
        assert f"`{kind.value}`" in stream, f"{kind.value} is not listed as an event kind"
        assert kind.value in server_sections, f"{kind.value} has no server → client section"


def test_every_json_block_is_a_captured_example() -> None:
    capture = capture_module()
    outside = capture.MARKER.sub("", DOC)
    assert "```json" not in outside, "a ```json block outside <!-- captured: … --> markers"
    names = capture.marked(DOC)
    assert len(names) == len(set(names)), "an example name is used twice"
    examples = capture.documented(DOC)  # each marker holds exactly one block of valid JSON
    assert set(examples) == set(names)
    assert DOC.count("```json") == len(names)


def test_shape_sees_keys_and_types_not_values() -> None:
    shape = capture_module().shape
    assert shape({"a": 1, "b": "x…"}) == shape({"a": 2, "b": "yz"})
    assert shape({"a": 1}) != shape({"a": "1"})
    assert shape({"a": None}) != shape({"a": {}})
    assert shape({"a": [1, 2]}) == shape({"a": [3]})
    assert shape({"0123456789abcdef…": {"user": 1}}) == shape({"fedcba9876543210…": {"user": 2}})
    assert shape({"a": True}) != shape({"a": 1})


@pytest.mark.live
@pytest.mark.timeout(240)
def test_each_example_has_the_shape_of_a_fresh_capture() -> None:
    capture = capture_module()
    fresh = capture.capture()
    examples = capture.documented(DOC)
    assert set(examples) <= set(fresh), set(examples) - set(fresh)
    differ = [
        name for name in examples if capture.shape(examples[name]) != capture.shape(fresh[name])
    ]
    assert not differ, f"run `make docs-examples`: these examples changed shape: {differ}"
