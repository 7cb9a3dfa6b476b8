"""Schemathesis against the real ASGI server: every operation in
``/api/schema/`` (the ``/v1/...`` OpenAI-compatible ones included) is fuzzed
with a bounded, derandomized number of generated requests, and every
response must be a non-5xx, carry a documented status code and content type,
and match the documented schema.

The fuzzing principal is the owner of a dedicated organization, created for
this test, acting through an API key.  Generated path ids are either random
UUIDs (404 paths) or the ids of real objects of that organization, so the
handlers behind them run too.  Negative (schema-violating) cases are sent
as well as valid ones, each documented ``Accept`` (JSON, event stream,
YAML) is tried, an unsatisfiable ``Accept`` is sent once per operation, and
the chat happy paths (JSON and streamed) are sent as explicit cases.

Destructive operations stay in the run; what keeps it meaningful:
- ``DELETE /api-keys/{id}``, ``PATCH``/``DELETE /orgs/current/members/{id}``
  get a random id or a disposable key / viewer member created for the run,
  never the principal's own key or membership (removing those is covered by
  the accounts tests), so the principal cannot revoke or demote itself;
- ``POST /auth/token/`` (login) is fuzzed with generated usernames, never the
  owner's, so lock-outs cannot hit it; ``/auth/token/blacklist/`` and
  ``refresh/`` get generated tokens, and the principal is an API key, which
  no JWT blacklisting can log out;
- ``DELETE /agents/{id}``, ``status``, ``bulk`` may remove or disable the
  offered agent; the chat happy paths use a second agent whose id is never
  offered.
After the run the principal must still be the organization's owner.

For a deeper local run, raise ``MAX_EXAMPLES``.
"""

import uuid

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from agenthub.testing import run_daphne, subprocess_env

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# Examples per operation: enough to reach the validation and not-found paths
# of every handler, few enough that the whole run stays well under two
# minutes on two cores.
MAX_EXAMPLES = 15

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]

# Operations left out of the run, each with its reason.  Nothing else is
# skipped: the test fails if an operation of the schema is not fuzzed.
EXCLUDED: dict[str, str] = {}


def _operation_key(operation) -> str:
    return f"{operation.method.upper()} {operation.path}"


@pytest.fixture
def fuzz_org():
    """A dedicated organization: an owner acting through an API key, and
    disposable objects whose ids the fuzzer may use (and destroy)."""
    from accounts.roles import Role
    from accounts.services import api_key_create, invitation_create
    from accounts.tests.factories import MembershipFactory, OrganizationFactory, UserFactory
    from agents.tests.factories import published_agent
    from chat.models import Channel, Conversation

    organization = OrganizationFactory(name="Fuzz", slug="fuzz")
    owner = UserFactory(username="fuzz-owner")
    MembershipFactory(organization=organization, user=owner, role=Role.OWNER)
    # A second member the fuzzer may demote or remove.
    spare = MembershipFactory(organization=organization, user=UserFactory(username="fuzz-spare"), role=Role.VIEWER)
    own_key, raw = api_key_create(
        organization=organization, name="fuzz-owner-key", role=Role.OWNER, actor_role=Role.OWNER, created_by=owner
    )
    spare_key, _ = api_key_create(organization=organization, name="fuzz-spare-key", actor_role="owner")
    invitation = invitation_create(
        organization=organization,
        actor_role=Role.OWNER,
        invited_by=owner,
        email="fuzz-invitee@example.com",
        role="member",
    )
    agent = published_agent(organization, user=owner, slug="fuzz-agent", name="Fuzz agent")
    # The agent of the happy-path chats: its id is never offered, so the
    # fuzzer cannot delete or disable it first.
    published_agent(organization, user=owner, slug="fuzz-chat", name="Fuzz chat", model="offline")
    conversation = Conversation.objects.create(
        organization=organization,
        agent=agent,
        version=agent.versions.get(),
        api_key=own_key,
        channel=Channel.REST,
    )
    return {
        "organization": organization,
        "owner": owner,
        "raw_key": raw,
        "own_key_id": str(own_key.id),
        "ids": {
            "/api/v1/agents/{id}": [str(agent.id)],
            "/api/v1/api-keys/{id}": [str(spare_key.id)],
            "/api/v1/orgs/current/members/{id}": [str(spare.id)],
            "/api/v1/orgs/current/invitations/{id}": [str(invitation.id)],
            "/api/v1/sessions/{id}": [str(conversation.id)],
        },
    }


def _real_ids(ids: dict[str, list[str]], path: str) -> list[str]:
    for prefix, values in ids.items():
        if path == prefix or path.startswith(prefix + "/"):
            return values
    return []


def _accept_variants(operation) -> list[dict]:
    """The ``Accept`` headers worth sending: each non-JSON media type a
    success of the operation is documented with (event streams, YAML)."""
    variants = [{}]
    for response in operation.definition.raw.get("responses", {}).values():
        for media_type in (response.get("content") or {}) if isinstance(response, dict) else ():
            if media_type != "application/json" and {"Accept": media_type} not in variants:
                variants.append({"Accept": media_type})
    return variants


# Valid bodies that reach the happy path of operations whose generated bodies
# almost never name a real object (the agent's slug): answers and streams
# are validated too, not only errors.  Sent once per documented Accept.
REAL_BODIES = {
    "POST /api/v1/chat": [{"agent": "fuzz-chat", "prompt": "hello"}],
    "POST /v1/chat/completions": [
        {"model": "fuzz-chat", "messages": [{"role": "user", "content": "hello"}]},
        {"model": "fuzz-chat", "messages": [{"role": "user", "content": "hi"}], "stream": True},
    ],
}


def _strategy(operation, *, ids, headers):
    """Cases for one operation, valid and invalid; a path id is a random
    UUID or a real one; each documented ``Accept`` is tried."""
    path_ids = [None]
    if "{id}" in operation.path:
        path_ids = [str(uuid.uuid4()), *_real_ids(ids, operation.path)]
    strategies = []
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        for accept in _accept_variants(operation):
            for value in path_ids:
                kwargs = {"path_parameters": {"id": value}} if value else {}
                strategies.append(operation.as_strategy(generation_mode=mode, headers={**headers, **accept}, **kwargs))
    return st.one_of(strategies)


def _fuzz_operation(operation, *, base, ids, headers) -> str | None:
    """Runs the bounded fuzz of one operation; the first failure, or None."""
    failures: list[str] = []

    @seed(20260701)
    @hypothesis_settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: report the first failure as found
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )
    @given(case=_strategy(operation, ids=ids, headers=headers))
    def run(case):
        if failures:
            return
        try:
            case.call_and_validate(base_url=base, checks=CHECKS, timeout=20)
        except (Exception, BaseExceptionGroup) as exc:  # collected and reported per operation
            failures.append(f"{type(exc).__name__}: {exc}")

    run()
    # An Accept nothing can satisfy: a documented 4xx (406, or 401/404 first).
    unacceptable = operation.Case(
        headers={**headers, "Accept": "image/png"},
        path_parameters={"id": str(uuid.uuid4())} if "{id}" in operation.path else None,
    )
    try:
        response = unacceptable.call_and_validate(base_url=base, checks=CHECKS, timeout=20)
        assert 400 <= response.status_code < 500, response.text
    except (Exception, BaseExceptionGroup) as exc:
        failures.append(f"Accept: image/png: {type(exc).__name__}: {exc}")
    # The happy paths, always sent (generation rarely names a real agent).
    for body in REAL_BODIES.get(_operation_key(operation), []):
        for accept in _accept_variants(operation):
            case = operation.Case(headers={**headers, **accept}, body=body, media_type="application/json")
            try:
                response = case.call_and_validate(base_url=base, checks=CHECKS, timeout=20)
            except (Exception, BaseExceptionGroup) as exc:
                failures.append(f"{type(exc).__name__}: {exc}")
                continue
            if response.status_code != 200:
                failures.append(f"{body} with {accept}: {response.status_code} {response.text[:500]}")
    return failures[0] if failures else None


def test_every_operation_survives_bounded_fuzzing(fuzz_org, tmp_path):
    env = subprocess_env(
        # The fuzzer sends a few hundred requests from one address in
        # seconds; rate limits are tested elsewhere.
        THROTTLE_RATE_USER="100000/min",
        THROTTLE_RATE_API_KEY="100000/min",
        THROTTLE_RATE_ANON="100000/min",
        AGENTHUB_DEFAULT_MODEL="offline",
    )
    log_path = tmp_path / "daphne.log"
    with run_daphne(env=env, log_path=log_path) as base:
        schema = schemathesis.openapi.from_url(f"{base}/api/schema/?format=json")
        operations = [result.ok() for result in schema.get_all_operations()]
        keys = {_operation_key(operation) for operation in operations}
        assert set(EXCLUDED) <= keys, "an excluded operation is no longer in the schema"
        assert len(operations) >= 50
        assert any(key.startswith("POST /v1/") for key in keys)
        by_key = {_operation_key(operation): operation for operation in operations}
        assert {"Accept": "text/event-stream"} in _accept_variants(by_key["POST /api/v1/chat"])
        assert {"Accept": "application/yaml"} in _accept_variants(by_key["GET /api/v1/agents/{id}/export"])

        headers = {"Authorization": f"Bearer {fuzz_org['raw_key']}"}
        found: dict[str, str] = {}
        fuzzed = set()
        for operation in operations:
            key = _operation_key(operation)
            if key in EXCLUDED:
                continue
            fuzzed.add(key)
            failure = _fuzz_operation(operation, base=base, ids=fuzz_org["ids"], headers=headers)
            if failure:
                found[key] = failure

        assert fuzzed | set(EXCLUDED) == keys
        log = log_path.read_text()
        assert not found, "\n\n".join(f"== {key}\n{failure}" for key, failure in found.items()) + "\n" + log[-4000:]

        # The principal survived its own fuzzing: its key and its ownership.
        with httpx.Client(base_url=base, timeout=10) as http:
            me = http.get("/api/v1/me", headers=headers)
        assert me.status_code == 200, me.text
        assert (me.json()["organization"]["slug"], me.json()["role"]) == ("fuzz", "owner")
    assert "Traceback" not in log_path.read_text()
