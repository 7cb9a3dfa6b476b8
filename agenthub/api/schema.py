"""drf-spectacular hooks: every operation documents the shared error shape."""

ERROR_COMPONENT = {
    "type": "object",
    "required": ["error", "request_id"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "properties": {
                "code": {"type": "string", "example": "validation_error"},
                "message": {"type": "string"},
                "details": {"type": "object", "additionalProperties": True},
            },
        },
        "request_id": {"type": "string", "nullable": True},
    },
}

# One event of a text/event-stream (Open API 3.0/3.1 describe a stream by
# the schema of one event): `event: error` and a `data:` line holding the
# JSON error object (see Error).
SSE_ERROR = {
    "type": "object",
    "required": ["event", "data"],
    "properties": {
        "event": {"type": "string", "enum": ["error"]},
        "data": {"type": "string", "description": "The Error object, as JSON (one line)."},
    },
}

_ERRORS = {
    "400": "Invalid input (see error.details.fields).",
    "401": "Missing or invalid credentials.",
    "403": "Your role does not allow this action.",
    "404": "Not found (or owned by another organization).",
    "406": "The Accept header asks for a media type this endpoint cannot answer with (not_acceptable).",
    "413": "Request body too large.",
    "415": "The request body's Content-Type is not one this endpoint reads (unsupported_media_type).",
    "429": "Rate limited; retry after the Retry-After header.",
}


def add_error_responses(result, generator, request, public):
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_COMPONENT
    ref = {"$ref": "#/components/schemas/Error"}
    for operations in result.get("paths", {}).values():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            # An endpoint that answers YAML renders its errors as YAML too
            # when the client asks for it (agents.apis.YAMLRenderer).
            answers_yaml = any(
                "application/yaml" in (response.get("content") or {})
                for status, response in responses.items()
                if str(status).startswith("2")
            )
            # An endpoint that can stream renders an error found before the
            # stream starts as one SSE frame (chat.apis.chat.EventStreamRenderer).
            answers_sse = any(
                "text/event-stream" in (response.get("content") or {})
                for status, response in responses.items()
                if str(status).startswith("2")
            )
            error_content = {"application/json": {"schema": ref}}
            if answers_yaml:
                error_content["application/yaml"] = {"schema": ref}
            if answers_sse:
                error_content["text/event-stream"] = {"schema": SSE_ERROR}
            for status, response in responses.items():
                # Errors the views declare themselves (409, 502 ...) take the same shape.
                if not str(status).startswith("2") and not response.get("content"):
                    response["content"] = dict(error_content)
            for code, description in _ERRORS.items():
                if code in ("413", "415") and method not in ("post", "put", "patch"):
                    continue
                responses.setdefault(code, {"description": description, "content": dict(error_content)})
    return result
