"""Every route of the JSON API declares its response bodies (core/api_schemas/).

The OpenAPI schema is read as a client generator would: every success
response must name a model (a `$ref`, a list of one, or a choice of those)
or, for a file, a binary content type. Each model the responses reach
forbids extra keys, so a route that starts sending an undeclared key fails
its own tests. The routes' tests run through these models and prove the
declared types true; the last tests here cover the shapes a route answers
with that no route test reaches (a v1 checkpoint, an unexplained redaction).
"""

import json
from typing import Any

import pytest
from ninja import NinjaAPI, Router, Schema
from ninja.operation import ResponseObject

from core.api_schemas.common import ErrorBody
from core.api_schemas.compliance import (
    AuditProof,
    Checkpoint,
    CheckpointV1,
    ExplainedRedaction,
    TimelineMessage,
)
from core.api_schemas.threads import LatestReceipts, MessageReaders
from core.outbound import RedactedOut

BINARY = {"type": "string", "format": "binary"}
REF = "#/components/schemas/"


def openapi() -> dict[str, Any]:
    from rounds.urls import api

    return api.get_openapi_schema(path_prefix="/api")


def names_a_model(schema: dict[str, Any]) -> bool:
    if "$ref" in schema:
        return True
    if schema.get("type") == "array":
        return names_a_model(schema.get("items", {}))
    choices = schema.get("anyOf") or schema.get("oneOf")
    return bool(choices) and all(names_a_model(choice) for choice in choices)


def undeclared(operation: dict[str, Any]) -> list[str]:
    """What is missing from an operation's success responses; empty when all declared."""
    successes = {
        status: response
        for status, response in operation["responses"].items()
        if 200 <= int(status) < 300
    }
    if not successes:
        return ["no success response"]
    problems = []
    for status, response in successes.items():
        content = response.get("content") or {}
        if not content:
            problems.append(f"{status}: no body declared")
        for media_type, media in content.items():
            schema = media.get("schema", {})
            declared = (
                names_a_model(schema) if media_type == "application/json" else (schema == BINARY)
            )
            if not declared:
                problems.append(f"{status} {media_type}: untyped {json.dumps(schema)}")
    return problems


def operations(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        f"{method.upper()} {path}": operation
        for path, methods in schema["paths"].items()
        for method, operation in methods.items()
    }


def test_every_route_declares_its_success_bodies():
    problems = {
        name: missing
        for name, operation in operations(openapi()).items()
        if (missing := undeclared(operation))
    }
    assert problems == {}


def test_an_undeclared_body_is_caught():
    """The check above fails on a route left as the API's routes once were."""
    router = Router()

    @router.get("/plain")
    def plain(request: Any) -> dict[str, Any]:
        return {}

    @router.post("/created", response={201: dict})
    def created(request: Any) -> dict[str, Any]:
        return {}

    probe = NinjaAPI(urls_namespace="probe")
    probe.add_router("/", router)
    found = {
        name: undeclared(op)
        for name, op in operations(probe.get_openapi_schema(path_prefix="/probe")).items()
    }
    assert all(found.values()), found


def referenced(node: Any) -> set[str]:
    if isinstance(node, dict):
        refs = {node["$ref"].removeprefix(REF)} if "$ref" in node else set()
        return refs.union(*(referenced(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(referenced(value) for value in node))
    return set()


def test_every_response_model_forbids_undeclared_keys():
    schema = openapi()
    components = schema["components"]["schemas"]
    bodies = [
        response
        for operation in operations(schema).values()
        for response in operation["responses"].values()
    ]
    reached, todo = set[str](), referenced(bodies)
    while todo:
        name = todo.pop()
        reached.add(name)
        todo |= referenced(components[name]) - reached
    assert reached
    open_models = [
        n for n in sorted(reached) if components[n].get("additionalProperties") is not False
    ]
    assert open_models == []


def test_every_route_declares_the_error_body():
    for name, operation in operations(openapi()).items():
        for status in ("400", "401", "403", "404", "409", "429"):
            body = operation["responses"][int(status)]["content"]["application/json"]["schema"]
            assert body == {"$ref": f"{REF}{ErrorBody.__name__}"}, (name, status)


def answered(model: Any, body: Any) -> Any:
    """The body validated as ninja validates a route's answer; it must go out unchanged."""
    wrapper = type("Answer", (Schema,), {"__annotations__": {"response": model}})
    validated = wrapper.model_validate(ResponseObject(body))
    assert json.dumps(validated.model_dump()["response"]) == json.dumps(body)
    return validated.response


CHECKPOINT_V1 = {
    "seq": 3,
    "hash": "ab" * 32,
    "count": 5,
    "at": "2026-01-01T00:00:00+00:00",
    "key": "cd" * 32,
    "signature": "ef" * 64,
    "format": "rounds-audit-checkpoint-v1",
}


def test_the_library_reads_take_a_compliance_case_in_a_header_never_the_query():
    library = ("photos", "patients/{patient_id}/sequences", "departments/{department_id}/stats")
    for path in library:
        parameters = openapi()["paths"][f"/api/library/{path}"]["get"]["parameters"]
        where = {(p["name"], p["in"]) for p in parameters}
        assert ("X-Rounds-Case", "header") in where, path
        assert ("case", "query") not in where, path


def test_a_v1_checkpoint_goes_out_without_a_root():
    proof = {"case": 1, "checkpoint": CHECKPOINT_V1, "checkpoint_name": "c1", "later": 0}
    assert type(answered(AuditProof, {**proof, "entries": []}).checkpoint) is CheckpointV1
    with_root = {**proof, "checkpoint": {**CHECKPOINT_V1, "root": "01" * 32}}
    assert type(answered(AuditProof, {**with_root, "entries": []}).checkpoint) is Checkpoint


def test_a_redaction_without_its_audit_entry_goes_out_unexplained():
    message = {
        "id": 1,
        "thread": 2,
        "seq": 3,
        "sender": {"id": 4, "username": "surgeon_bob"},
        "client_msg_id": "a1b2c3d4e5",
        "envelope": {"header": {"v": 2}, "ciphertext": "AAAA"},
        "created_at": "2026-01-01T00:00:00+00:00",
        "attachments": [],
        "redacted": {"at": "2026-01-02T00:00:00+00:00", "by": 4},
        "correction": None,
        "corrections": [],
    }
    assert type(answered(TimelineMessage, message).redacted) is RedactedOut
    explained = {**message["redacted"], "reason": "Wrong patient", "right": "sender"}
    answer = answered(TimelineMessage, {**message, "redacted": explained})
    assert type(answer.redacted) is ExplainedRedaction


def test_receipts_answer_one_of_two_bodies():
    reader = {"user": {"id": 4, "username": "surgeon_bob"}, "read_at": "2026-01-01T00:00:00"}
    readers = {"thread": 1, "seq": 4, "readers": [reader]}
    assert type(answered(LatestReceipts | MessageReaders, readers)) is MessageReaders
    latest = {"thread": 1, "receipts": []}
    assert type(answered(LatestReceipts | MessageReaders, latest)) is LatestReceipts


@pytest.mark.django_db
def test_a_body_stored_under_an_older_looser_rule_still_reads_back(hospital):
    """An answer describes what is stored and never re-judges it: a ciphertext kept in
    URL-safe base64 (refused on the way in today) still comes back in history."""
    from chat.models import Message
    from tests.support import Api
    from tests.support.posts import post

    message_id = post(hospital, "surgeon_bob", hospital.thread, "cmid-old-rule")
    Message.objects.filter(pk=message_id).update(ciphertext="MCVKEzHxKq-E1wbVa9e_ikQU")
    answer = Api(hospital.user("nurse_alice")).get(f"/api/threads/{hospital.thread.pk}/messages")
    assert answer.status_code == 200, answer.content
    [message] = [m for m in answer.json()["messages"] if m["id"] == message_id]
    assert message["envelope"]["ciphertext"] == "MCVKEzHxKq-E1wbVa9e_ikQU"
