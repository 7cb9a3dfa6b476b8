"""What /api/schema/ says about the responses that are not plain JSON (the
YAML export, the event streams) and about fields the fuzzer found
mis-described; and that ``?format=`` cannot turn a JSON answer into an SSE
error frame."""

import pytest
from rest_framework.test import APIClient

from chat.tests.helpers import make_live_agent


@pytest.fixture(scope="module")
def schema(django_db_blocker):
    with django_db_blocker.unblock():
        response = APIClient().get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    return response.json()


def _content(schema, path, method, status):
    return schema["paths"][path][method]["responses"][status]["content"]


def _parameters(schema, path, method):
    return {parameter["name"] for parameter in schema["paths"][path][method].get("parameters", [])}


def test_agent_export_is_a_yaml_document_and_its_errors_can_be_yaml(schema):
    path = "/api/v1/agents/{id}/export"
    ok = _content(schema, path, "get", "200")
    assert list(ok) == ["application/yaml"]
    document = ok["application/yaml"]["schema"]
    assert document["type"] == "object"
    assert document["required"] == ["apiVersion", "kind", "metadata", "spec"]
    assert set(document["properties"]["spec"]["properties"]) >= {"system_prompt", "model", "tools"}
    for status in ("401", "403", "404"):
        assert set(_content(schema, path, "get", status)) == {"application/json", "application/yaml"}
    # JSON-only endpoints keep JSON-only errors.
    assert set(_content(schema, "/api/v1/agents/{id}", "get", "404")) == {"application/json"}


@pytest.mark.parametrize("path", ["/api/v1/chat", "/v1/chat/completions"])
def test_chat_answers_json_or_an_event_stream(schema, path):
    ok = _content(schema, path, "post", "200")
    assert set(ok) == {"application/json", "text/event-stream"}
    event = ok["text/event-stream"]["schema"]
    assert event["type"] == "object"
    assert set(event["properties"]) >= {"event", "data"}
    for status in ("400", "401", "404", "409" if path == "/api/v1/chat" else "502", "429"):
        content = _content(schema, path, "post", status)
        assert set(content) == {"application/json", "text/event-stream"}
        assert content["text/event-stream"]["schema"]["properties"]["event"]["enum"] == ["error"]
    assert "format" not in _parameters(schema, path, "post")


def test_session_events_are_an_event_stream_with_ids(schema):
    path = "/api/v1/sessions/{id}/events"
    ok = _content(schema, path, "get", "200")
    assert list(ok) == ["text/event-stream"]
    assert set(ok["text/event-stream"]["schema"]["properties"]) == {"id", "event", "data"}
    description = schema["paths"][path]["get"]["description"]
    assert all(line in description for line in ("`id:`", "`event:`", "`data:`", "Last-Event-ID"))
    assert set(_content(schema, path, "get", "404")) == {"application/json", "text/event-stream"}
    assert "format" not in _parameters(schema, path, "get")


def test_declared_error_responses_carry_the_error_shape(schema):
    busy = _content(schema, "/api/v1/chat", "post", "409")
    assert busy["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}


def test_api_key_created_by_may_be_null(schema):
    """A key created by a script through another key has no creating user."""
    for component in ("ApiKey", "ApiKeyCreated"):
        assert schema["components"]["schemas"][component]["properties"]["created_by"]["nullable"] is True


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/chat", {"agent": "helper", "prompt": "hello"}),
        ("/v1/chat/completions", {"model": "helper", "messages": [{"role": "user", "content": "hello"}]}),
    ],
)
def test_format_query_does_not_render_an_answer_as_an_sse_error(org_a, path, body):
    """``?format=sse`` used to pick the SSE renderer for a JSON answer: a
    200 whose body was an ``event: error`` frame."""
    make_live_agent(org_a.organization)
    response = org_a.client("member").post(f"{path}?format=sse", body, format="json")
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("application/json")
    assert not response.content.startswith(b"event:")


@pytest.mark.django_db(transaction=True)
def test_openai_completion_without_stream_is_json_even_when_sse_is_accepted(org_a):
    """``Accept: text/event-stream`` without ``"stream": true`` used to get a
    200 whose body was the completion wrapped in an ``event: error`` frame."""
    make_live_agent(org_a.organization)
    response = org_a.client("member").post(
        "/v1/chat/completions",
        {"model": "helper", "messages": [{"role": "user", "content": "hello"}]},
        format="json",
        HTTP_ACCEPT="text/event-stream",
    )
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["object"] == "chat.completion"


@pytest.mark.django_db(transaction=True)  # /v1 views are async: another thread reads the user
@pytest.mark.parametrize(
    ("method", "path", "schema_path", "kwargs", "status", "code"),
    [
        ("get", "/api/v1/agents", "/api/v1/agents", {"HTTP_ACCEPT": "image/png"}, 406, "not_acceptable"),
        ("get", "/v1/models", "/v1/models", {"HTTP_ACCEPT": "image/png"}, 406, "not_acceptable"),
        (
            "post",
            "/api/v1/agents",
            "/api/v1/agents",
            {"data": "x", "content_type": "text/plain"},
            415,
            "unsupported_media_type",
        ),
        (
            "post",
            "/v1/chat/completions",
            "/v1/chat/completions",
            {"data": "x", "content_type": "text/plain"},
            415,
            "unsupported_media_type",
        ),
    ],
)
def test_negotiation_errors_happen_and_are_documented(schema, org_a, method, path, schema_path, kwargs, status, code):
    response = getattr(org_a.client("owner"), method)(path, **kwargs)
    assert (response.status_code, response.json()["error"]["code"]) == (status, code)
    assert "application/json" in _content(schema, schema_path, method, str(status))
    assert "415" not in schema["paths"]["/api/v1/agents"]["get"]["responses"]
