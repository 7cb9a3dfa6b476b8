"""A local fake of the few Stripe endpoints AgentHub calls, for the real
``stripe`` SDK to talk to (``STRIPE_API_BASE``), and Stripe's webhook
signing scheme, written here so the endpoint's verification (the SDK's) is
tested against an independent implementation.

- ``POST /v1/checkout/sessions`` (form-encoded, nested keys such as
  ``line_items[0][price_data][unit_amount]``, as the SDK sends them) answers
  a ``checkout.session`` object; a repeated ``Idempotency-Key`` answers the
  same session.
- ``GET /v1/checkout/sessions/{id}`` retrieves one.
- Requests need ``Authorization: Bearer <the key>``; ``failures = N`` makes
  the next N creates answer a 500 Stripe error (the SDK retries them).
"""

import hashlib
import hmac
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl

API_KEY = "sk_test_fake_agenthub"
WEBHOOK_SECRET = "whsec_fake_agenthub_0123456789"


def sign(payload: bytes | str, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    """A ``Stripe-Signature`` header: ``t=<unix time>,v1=<hex HMAC-SHA256 of
    "<t>.<payload>" keyed with the endpoint secret>``."""
    body = payload.decode() if isinstance(payload, bytes) else payload
    t = int(time.time()) if timestamp is None else int(timestamp)
    digest = hmac.new(secret.encode(), f"{t}.{body}".encode(), hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


def nested_form(pairs: list[tuple[str, str]]) -> dict:
    """``a[b][0][c]=v`` pairs as nested dicts and lists."""
    root: dict = {}
    for key, value in pairs:
        parts = key.replace("]", "").split("[")
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return _lists(root)


def _lists(node):
    if isinstance(node, dict):
        if node and all(k.isdigit() for k in node):
            return [_lists(node[k]) for k in sorted(node, key=int)]
        return {k: _lists(v) for k, v in node.items()}
    return node


def event(event_type: str, obj: dict, *, event_id: str | None = None, created: int | None = None) -> dict:
    return {
        "id": event_id or f"evt_{secrets.token_hex(12)}",
        "object": "event",
        "api_version": "2025-01-27.acacia",
        "created": created or int(time.time()),
        "livemode": False,
        "pending_webhooks": 1,
        "type": event_type,
        "data": {"object": obj},
    }


class FakeStripe:
    def __init__(self, api_key: str = API_KEY):
        self.api_key = api_key
        self.sessions: dict[str, dict] = {}
        self.requests: list[dict] = []
        self.failures = 0
        self._idempotent: dict[str, str] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()

    def reset(self):
        with self._lock:
            self.sessions.clear()
            self.requests.clear()
            self._idempotent.clear()
            self.failures = 0

    # --- what a payer and Stripe's servers do -----------------------------------------------------

    def complete(self, session_id: str) -> dict:
        """The payer paid: the session is complete, with a PaymentIntent."""
        session = self.sessions[session_id]
        session.update(status="complete", payment_status="paid", payment_intent=f"pi_{secrets.token_hex(12)}")
        return dict(session)

    def payment_intent_of(self, session_id: str, *, status: str = "succeeded") -> dict:
        session = self.sessions[session_id]
        return {
            "id": session.get("payment_intent") or f"pi_{secrets.token_hex(12)}",
            "object": "payment_intent",
            "amount": session["amount_total"],
            "amount_received": session["amount_total"] if status == "succeeded" else 0,
            "currency": session["currency"],
            "metadata": dict(session["payment_intent_metadata"]),
            "status": status,
        }

    # --- the HTTP side -----------------------------------------------------------------------------

    def _create_session(self, form: dict, idempotency_key: str) -> tuple[int, dict]:
        with self._lock:
            if idempotency_key and idempotency_key in self._idempotent:
                return 200, self.sessions[self._idempotent[idempotency_key]]
            if self.failures > 0:
                self.failures -= 1
                return 500, {"error": {"type": "api_error", "message": "The fake is down."}}
            items = form.get("line_items") or []
            try:
                amount = sum(int(i["price_data"]["unit_amount"]) * int(i.get("quantity", 1)) for i in items)
                currency = items[0]["price_data"]["currency"]
            except (KeyError, IndexError, ValueError, TypeError):
                return 400, {
                    "error": {"type": "invalid_request_error", "code": "parameter_missing", "message": "line_items"}
                }
            session_id = f"cs_test_{secrets.token_hex(16)}"
            session = {
                "id": session_id,
                "object": "checkout.session",
                "mode": form.get("mode"),
                "status": "open",
                "payment_status": "unpaid",
                "amount_total": amount,
                "amount_subtotal": amount,
                "currency": currency,
                "client_reference_id": form.get("client_reference_id"),
                "metadata": form.get("metadata") or {},
                "payment_intent_metadata": (form.get("payment_intent_data") or {}).get("metadata") or {},
                "payment_intent": None,
                "success_url": form.get("success_url"),
                "cancel_url": form.get("cancel_url"),
                "expires_at": int(form.get("expires_at") or time.time() + 86400),
                "livemode": False,
                "url": f"{self.base_url}/c/pay/{session_id}",
                "line_items_sent": items,
            }
            self.sessions[session_id] = session
            if idempotency_key:
                self._idempotent[idempotency_key] = session_id
            return 200, session

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _answer(self, status: int, body: dict):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Request-Id", f"req_{secrets.token_hex(8)}")
                self.end_headers()
                self.wfile.write(data)

            def _authorized(self) -> bool:
                if self.headers.get("Authorization") == f"Bearer {fake.api_key}":
                    return True
                self._answer(401, {"error": {"type": "invalid_request_error", "message": "Invalid API Key."}})
                return False

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode()
                form = nested_form(parse_qsl(raw, keep_blank_values=True))
                fake.requests.append(
                    {"method": "POST", "path": self.path, "form": form, "headers": dict(self.headers.items())}
                )
                if not self._authorized():
                    return
                if self.path != "/v1/checkout/sessions":
                    self._answer(404, {"error": {"type": "invalid_request_error", "message": "Unrecognized URL"}})
                    return
                self._answer(*fake._create_session(form, self.headers.get("Idempotency-Key", "")))

            def do_GET(self):
                fake.requests.append({"method": "GET", "path": self.path, "headers": dict(self.headers.items())})
                if not self._authorized():
                    return
                prefix = "/v1/checkout/sessions/"
                session = fake.sessions.get(self.path[len(prefix) :]) if self.path.startswith(prefix) else None
                if session is None:
                    self._answer(
                        404,
                        {"error": {"type": "invalid_request_error", "code": "resource_missing", "message": "No such"}},
                    )
                    return
                self._answer(200, session)

        return Handler
