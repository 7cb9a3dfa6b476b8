"""Deterministic "model" behaviour shared by the offline provider and the mock
OpenAI-compatible server: token estimates, tool mentions, tool call ids.

Nothing here imports Django, so the mock server can run on its own.
"""

import hashlib
import json
import re
from collections.abc import Iterable

_WORD = re.compile(r"\S+")
_TOKEN = re.compile(r"\s*\S+")


def count_words(text: str) -> int:
    """Whitespace-separated words: the token estimate of the offline model
    and the mock server (real tokenizers differ; this is only an estimate)."""
    return len(_WORD.findall(text or ""))


def split_tokens(text: str) -> list[str]:
    """``text`` as word tokens, each carrying the whitespace before it, so
    ``"".join(split_tokens(t)) == t.rstrip()``."""
    return _TOKEN.findall(text or "")


def stable_hex(*parts: object, length: int = 24) -> str:
    digest = hashlib.sha256("\x1f".join(str(part) for part in parts).encode()).hexdigest()
    return digest[:length]


def tool_call_id(*parts: object) -> str:
    """An OpenAI-shaped tool call id (``call_<hex>``), the same for the same parts."""
    return f"call_{stable_hex(*parts)}"


def _arguments_after(text: str, position: int) -> str:
    """JSON object arguments written right after a tool name:
    ``name({"a": 1})``, ``name {"a": 1}`` or ``name()``; ``"{}"`` otherwise."""
    rest = text[position:]
    stripped = rest.lstrip()
    if stripped.startswith("("):
        stripped = stripped[1:].lstrip()
    if stripped.startswith("{"):
        try:
            value, _ = json.JSONDecoder().raw_decode(stripped)
        except ValueError:
            return "{}"
        if isinstance(value, dict):
            return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return "{}"


def find_tool_mention(text: str, tool_names: Iterable[str]) -> tuple[str, str] | None:
    """The tool named earliest in ``text`` (as a whole word) and its arguments
    as JSON text, or ``None`` when no offered tool is named."""
    best: tuple[int, int, str] | None = None
    for name in tool_names:
        if not name:
            continue
        match = re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text)
        if match is None:
            continue
        # Earliest mention wins; on a tie, the longer name.
        key = (match.start(), -len(name), name)
        if best is None or key < best:
            best = key
    if best is None:
        return None
    start, _, name = best
    return name, _arguments_after(text, start + len(name))
