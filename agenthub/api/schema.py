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

_ERRORS = {
    "400": "Invalid input (see error.details.fields).",
    "401": "Missing or invalid credentials.",
    "403": "Your role does not allow this action.",
    "404": "Not found (or owned by another organization).",
    "413": "Request body too large.",
    "429": "Rate limited; retry after the Retry-After header.",
}


def add_error_responses(result, generator, request, public):
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_COMPONENT
    ref = {"$ref": "#/components/schemas/Error"}
    for operations in result.get("paths", {}).values():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            for code, description in _ERRORS.items():
                if code == "413" and method not in ("post", "put", "patch"):
                    continue
                responses.setdefault(
                    code, {"description": description, "content": {"application/json": {"schema": ref}}}
                )
    return result
