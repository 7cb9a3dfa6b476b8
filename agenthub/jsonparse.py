"""The one JSON parser for everything a client sends: HTTP bodies (the DRF
parser below) and websocket frames (``chat.consumers``).

``json.loads`` recurses once per nesting level, so a small body of a few
thousand brackets raises ``RecursionError`` (a 500, or a dead consumer), and a
document that parses at depth 900 still breaks the code that walks it later.
Here a document deeper than ``JSON_MAX_DEPTH`` is refused as invalid input
before anything else sees it.
"""

from typing import Any

from django.conf import settings
from rest_framework import exceptions, parsers


class InvalidJson(ValueError):
    """The text is not JSON, or is nested deeper than allowed; ``str()`` is a
    message a person can act on."""


def _too_deep(value: Any, limit: int) -> bool:
    """Whether ``value`` nests containers more than ``limit`` levels deep
    (iterative: no recursion however deep the document)."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(node, dict):
            stack.extend((child, depth + 1) for child in node.values() if isinstance(child, dict | list))
        elif isinstance(node, list):
            stack.extend((child, depth + 1) for child in node if isinstance(child, dict | list))
    return False


def parse_json(text: str | bytes, *, max_depth: int | None = None) -> Any:
    """``text`` decoded, or :class:`InvalidJson`."""
    import json

    limit = settings.JSON_MAX_DEPTH if max_depth is None else max_depth
    if isinstance(text, bytes | bytearray):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidJson("The body is not UTF-8 text.") from exc
    too_deep = InvalidJson(f"The JSON document is nested more than {limit} levels deep.")
    try:
        value = json.loads(text)
    except RecursionError:
        raise too_deep from None
    except ValueError as exc:
        raise InvalidJson(f"The body is not valid JSON: {exc}.") from None
    # Only documents with that many openings can be that deep: skip the walk
    # for the rest (str.count runs at C speed).
    if text.count("[") + text.count("{") > limit and _too_deep(value, limit):
        raise too_deep
    return value


class JsonParseError(exceptions.ParseError):
    default_code = "invalid_json"


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, through :func:`parse_json`: malformed or too deeply
    nested bodies are a 400 ``invalid_json``."""

    def parse(self, stream, media_type=None, parser_context=None):
        raw = stream.read() if stream is not None else b""
        try:
            return parse_json(raw)
        except InvalidJson as exc:
            raise JsonParseError(str(exc)) from None
