"""The built-in tools: the current time, a safe calculator, an HTTP request
(approval required) and sending an email (approval required)."""

import ast
import math
import operator
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.core.mail import EmailMessage

from accounts.roles import Role
from tools.registry import CELERY, ToolContext, ToolFailed, tool


@tool(
    "current_time",
    description="The current date and time, in a time zone (IANA name such as Europe/Paris; UTC by default).",
    parameters={
        "type": "object",
        "properties": {"timezone": {"type": "string", "maxLength": 64, "description": "IANA time zone name"}},
        "additionalProperties": False,
    },
    min_role=Role.VIEWER,
    timeout_seconds=2,
)
def current_time(arguments: dict, context: ToolContext) -> dict:
    name = arguments.get("timezone") or "UTC"
    try:
        zone = ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ToolFailed(f"Unknown time zone '{name}'; use an IANA name such as Europe/Paris.") from None
    now = datetime.now(UTC).astimezone(zone)
    return {"timezone": name, "iso": now.isoformat(timespec="seconds"), "weekday": now.strftime("%A")}


# --- calculator: arithmetic on numbers only, evaluated from the AST ------------------------

_BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_FUNCTIONS = {
    "sqrt": math.sqrt,
    "abs": abs,
    "round": round,
    "min": min,
    "max": max,
    "log": math.log,
    "log10": math.log10,
    "exp": math.exp,
    "sin": math.sin,
    "cos": math.cos,
    "tan": math.tan,
    "floor": math.floor,
    "ceil": math.ceil,
}
_CONSTANTS = {"pi": math.pi, "e": math.e}
MAX_EXPRESSION_CHARS = 500
MAX_EXPONENT = 1000
MAX_MAGNITUDE = 10**100


def _evaluate(node: ast.AST) -> float | int:
    if isinstance(node, ast.Expression):
        return _evaluate(node.body)
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    if isinstance(node, ast.Name) and node.id in _CONSTANTS:
        return _CONSTANTS[node.id]
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_evaluate(node.operand))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _evaluate(node.left), _evaluate(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > MAX_EXPONENT:
            raise ToolFailed(f"Exponents are limited to {MAX_EXPONENT}.")
        result = _BINARY[type(node.op)](left, right)
        if isinstance(result, complex) or abs(result) > MAX_MAGNITUDE:
            raise ToolFailed("The result is out of range.")
        return result
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in _FUNCTIONS
        and not node.keywords
        and len(node.args) <= 10
    ):
        return _FUNCTIONS[node.func.id](*(_evaluate(arg) for arg in node.args))
    raise ToolFailed(
        f"Only numbers, + - * / // % **, parentheses, pi, e and {', '.join(sorted(_FUNCTIONS))} are allowed."
    )


@tool(
    "calculator",
    description="Evaluates an arithmetic expression exactly, e.g. '(17.5 * 3) / 4' or 'sqrt(2) * pi'.",
    parameters={
        "type": "object",
        "properties": {"expression": {"type": "string", "minLength": 1, "maxLength": MAX_EXPRESSION_CHARS}},
        "required": ["expression"],
        "additionalProperties": False,
    },
    min_role=Role.VIEWER,
    timeout_seconds=2,
)
def calculator(arguments: dict, context: ToolContext) -> dict:
    expression = arguments["expression"]
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError:
        raise ToolFailed(f"'{expression}' is not an arithmetic expression.") from None
    try:
        value = _evaluate(tree)
    except ZeroDivisionError:
        raise ToolFailed("Division by zero.") from None
    except (ValueError, OverflowError, TypeError) as exc:
        raise ToolFailed(f"Cannot evaluate: {exc}.") from None
    return {"expression": expression, "result": value}


# --- outbound actions (a person approves each call) ----------------------------------------


@tool(
    "http_request",
    description=(
        "Sends an HTTP request to a public URL and returns the status and body. "
        "Each call is a draft that a person must approve before it is sent."
    ),
    parameters={
        "type": "object",
        "properties": {
            "method": {"type": "string", "enum": ["GET", "POST", "PUT", "PATCH", "DELETE"]},
            "url": {"type": "string", "minLength": 8, "maxLength": 2000},
            "headers": {"type": "object", "additionalProperties": {"type": "string", "maxLength": 1000}},
            "body": {"description": "JSON body or text"},
        },
        "required": ["method", "url"],
        "additionalProperties": False,
    },
    min_role=Role.MEMBER,
    requires_approval=True,
    execution=CELERY,
    timeout_seconds=20,
)
def http_request(arguments: dict, context: ToolContext) -> dict:
    from tools.http_tools import fetch_for_organization

    headers = dict(arguments.get("headers") or {})
    if context.idempotency_key:
        headers.setdefault("Idempotency-Key", context.idempotency_key)
    return fetch_for_organization(
        organization_id=context.organization_id,
        method=arguments["method"],
        url=arguments["url"],
        headers=headers,
        body=arguments.get("body"),
        timeout=20,
    )


@tool(
    "send_email",
    description="Sends an email. Each email is a draft that a person must approve before it is sent.",
    parameters={
        "type": "object",
        "properties": {
            "to": {
                "type": "array",
                "items": {"type": "string", "format": "email", "maxLength": 254},
                "minItems": 1,
                "maxItems": 20,
            },
            "subject": {"type": "string", "minLength": 1, "maxLength": 200},
            "body": {"type": "string", "minLength": 1, "maxLength": 20000},
        },
        "required": ["to", "subject", "body"],
        "additionalProperties": False,
    },
    min_role=Role.MEMBER,
    requires_approval=True,
    execution=CELERY,
    timeout_seconds=30,
)
def send_email(arguments: dict, context: ToolContext) -> dict:
    headers = {}
    if context.idempotency_key:
        # The same Message-ID on a redelivered send lets the receiving side
        # drop the duplicate.
        headers["Message-ID"] = f"<{context.idempotency_key}@agenthub>"
    message = EmailMessage(
        subject=arguments["subject"],
        body=arguments["body"],
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=list(arguments["to"]),
        headers=headers,
    )
    sent = message.send(fail_silently=False)
    return {"sent": sent, "to": list(arguments["to"]), "subject": arguments["subject"]}
