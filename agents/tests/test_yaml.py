"""YAML export and import: the document, the round trip between
organizations, field-path errors, and the management commands."""

import io
import sys
from io import StringIO

import pytest
import yaml
from django.core.management import CommandError, call_command

from agents import selectors
from agents.models import Agent, AgentTool, AgentVersion
from agents.services import yamldoc
from agents.services.agents import EDITABLE_FIELDS, agent_update
from agents.services.grants import agent_tools_set
from agents.services.publishing import agent_publish
from agents.tests.factories import AgentFactory, published_agent
from tools.tests.factories import HttpToolFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/agents"
DEFINITION = {
    "name": "Support assistant",
    "slug": "support",
    "description": "Answers questions.\nAll day.",
    "industry": "customer-support",
    "system_prompt": "You are helpful.\n\n## Rules\n- Be kind: always.\n- Émojis 🙂 and ключ are fine.\n",
    "model": "gpt-4o-mini",
    "fallback_models": ["gpt-4o", "offline"],
    "temperature": 0.25,
    "max_output_tokens": 777,
    "max_tool_rounds": 3,
    "response_cache": "deterministic",
}
VALID = """\
apiVersion: agenthub/v1
kind: Agent
metadata:
  name: Imported
  slug: imported
spec:
  model: offline
"""


GRANTS = [
    "calculator",
    {"tool": "current_time", "min_role": "operator", "requires_approval": None},
    {"tool": "send_email", "min_role": None, "requires_approval": False},
]
# As the agent stores them (ordered by tool).
STORED_GRANTS = [
    {"tool": "calculator", "min_role": None, "requires_approval": None},
    {"tool": "current_time", "min_role": "operator", "requires_approval": None},
    {"tool": "send_email", "min_role": None, "requires_approval": False},
]


def http_tool(organization, name, **fields):
    return HttpToolFactory(organization=organization, name=name, **fields)


def with_grants(agent, grants=GRANTS):
    agent_tools_set(agent=agent, grants=[{"tool": g} if isinstance(g, str) else g for g in grants], user=None)
    return agent


def definition(agent):
    agent.refresh_from_db()
    return {name: getattr(agent, name) for name in EDITABLE_FIELDS}


def import_yaml(client, text, *, update=False, content_type="application/yaml"):
    path = f"{URL}/import" + ("?update=true" if update else "")
    return client.post(path, text, content_type=content_type)


def fields_of(response):
    assert response.status_code == 400, response.content
    return response.json()["error"]["details"]["fields"]


# --- export --------------------------------------------------------------------------------------


def test_export_document(org_a):
    agent = published_agent(org_a.organization, **DEFINITION)
    response = org_a.client("viewer").get(f"{URL}/{agent.pk}/export")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/yaml; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="support.yaml"'
    text = response.content.decode()
    assert "system_prompt: |" in text  # multi-line strings stay readable
    assert "🙂" in text
    document = yaml.safe_load(text)
    version = agent.live_version
    assert document == {
        "apiVersion": "agenthub/v1",
        "kind": "Agent",
        "metadata": {k: DEFINITION[k] for k in ("name", "slug", "description", "industry")},
        "spec": {
            **{k: DEFINITION[k] for k in yamldoc.SPEC_FIELDS if k != "tools"},
            "tools": [],
        },
        "version": {"number": 1, "published_at": version.published_at.isoformat(), "note": "v1"},
    }
    assert list(document) == ["apiVersion", "kind", "metadata", "spec", "version"]


def test_export_writes_grants_as_names_or_mappings_with_overrides(org_a):
    agent = with_grants(published_agent(org_a.organization, slug="bot"))
    agent_publish(agent=agent, user=None, note="With tools")
    client = org_a.client("viewer")
    text = client.get(f"{URL}/{agent.pk}/export").content.decode()
    document = yaml.safe_load(text)
    assert document["version"]["number"] == 2  # no unpublished changes: the live version
    assert document["spec"]["tools"] == GRANTS
    assert "  tools:\n  - calculator\n  - tool: current_time\n    min_role: operator\n" in text

    # Changed grants are the working definition; a version exports the grants it was published with.
    with_grants(agent, ["http_request"])
    assert yaml.safe_load(client.get(f"{URL}/{agent.pk}/export").content)["spec"]["tools"] == ["http_request"]
    v2 = yaml.safe_load(client.get(f"{URL}/{agent.pk}/export", {"version": 2}).content)
    assert v2["spec"]["tools"] == GRANTS
    v1 = yaml.safe_load(client.get(f"{URL}/{agent.pk}/export", {"version": 1}).content)
    assert v1["spec"]["tools"] == []


def test_export_of_unpublished_changes_has_no_version_and_versions_export_their_snapshot(org_a):
    agent = published_agent(org_a.organization, system_prompt="Live prompt.")
    agent_update(agent=agent, user=None, data={"system_prompt": "Draft prompt."})
    client = org_a.client("viewer")
    working = yaml.safe_load(client.get(f"{URL}/{agent.pk}/export").content)
    assert "version" not in working
    assert working["spec"]["system_prompt"] == "Draft prompt."
    live = yaml.safe_load(client.get(f"{URL}/{agent.pk}/export", {"version": 1}).content)
    assert live["spec"]["system_prompt"] == "Live prompt."
    assert live["version"]["number"] == 1
    missing = client.get(f"{URL}/{agent.pk}/export", {"version": 9})
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "version_not_found")
    for bad in ("abc", "-1", "1.5", "9" * 30):
        response = client.get(f"{URL}/{agent.pk}/export", {"version": bad})
        assert response.status_code == 400
        assert "version" in response.json()["error"]["details"]["fields"]


def test_export_honours_an_accept_header_for_yaml(org_a):
    agent = AgentFactory(organization=org_a.organization)
    client = org_a.client("viewer")
    ok = client.get(f"{URL}/{agent.pk}/export", HTTP_ACCEPT="application/yaml")
    assert ok.status_code == 200
    assert yaml.safe_load(ok.content)["metadata"]["slug"] == agent.slug
    missing = client.get(f"{URL}/00000000-0000-0000-0000-000000000000/export", HTTP_ACCEPT="application/yaml")
    assert missing.status_code == 404
    assert yaml.safe_load(missing.content)["error"]["code"] == "agent_not_found"


# --- round trip ------------------------------------------------------------------------------------


@pytest.mark.parametrize("as_json", [False, True])
def test_round_trip_into_another_organization(org_a, org_b, as_json):
    source = published_agent(org_a.organization, **DEFINITION)
    agent_publish(agent=source, user=None)
    text = org_a.client("viewer").get(f"{URL}/{source.pk}/export").content.decode()
    client = org_b.client("operator")
    response = client.post(f"{URL}/import", {"yaml": text}, format="json") if as_json else import_yaml(client, text)
    assert response.status_code == 201, response.json()
    copy = Agent.objects.get(pk=response.json()["id"])
    assert copy.organization == org_b.organization
    assert definition(copy) == definition(source) == DEFINITION
    # A draft: the version block is informational, nothing is published.
    assert (copy.status, copy.live_version_id, copy.created_by) == ("draft", None, org_b.users["operator"])
    assert AgentVersion.objects.filter(agent=copy).count() == 0
    # And back again: the export of the copy is the same document minus the version.
    again = yaml.safe_load(org_b.client("viewer").get(f"{URL}/{copy.pk}/export").content)
    original = yaml.safe_load(text)
    original.pop("version")
    assert again == original


def test_round_trip_of_grants_into_another_organization_and_slug(org_a, org_b):
    source = with_grants(published_agent(org_a.organization, **DEFINITION))
    agent_publish(agent=source, user=None)
    text = org_a.client("viewer").get(f"{URL}/{source.pk}/export").content.decode()
    text = text.replace("slug: support", "slug: support-copy")
    response = import_yaml(org_b.client("operator"), text)
    assert response.status_code == 201, response.json()
    copy = Agent.objects.get(pk=response.json()["id"])
    assert (copy.organization, copy.slug) == (org_b.organization, "support-copy")
    assert selectors.agent_tool_grants(copy) == selectors.agent_tool_grants(source) == STORED_GRANTS
    assert AgentTool.objects.filter(organization=org_b.organization).count() == 3
    assert copy.live_version_id is None  # still a draft: the grants apply when it is published
    version = agent_publish(agent=copy, user=None)
    assert version.tools == source.live_version.tools == STORED_GRANTS
    exported = yaml.safe_load(org_b.client("viewer").get(f"{URL}/{copy.pk}/export").content)
    assert exported["spec"]["tools"] == GRANTS


def test_import_with_update_replaces_the_grants(org_a):
    agent = with_grants(published_agent(org_a.organization, slug="bot"), ["calculator", "http_request"])
    client = org_a.client("operator")
    document = doc(
        metadata__slug="bot", spec__tools=["current_time", {"tool": "calculator", "requires_approval": True}]
    )
    assert import_yaml(client, document, update=True).status_code == 200
    assert selectors.agent_tool_grants(agent) == [
        {"tool": "calculator", "min_role": None, "requires_approval": True},
        {"tool": "current_time", "min_role": None, "requires_approval": None},
    ]
    agent.refresh_from_db()
    assert agent.updated_by == org_a.users["operator"]
    # A document without tools describes an agent without grants.
    assert import_yaml(client, doc(metadata__slug="bot"), update=True).status_code == 200
    assert selectors.agent_tool_grants(agent) == []
    assert agent.live_version.tools == []  # never published by an import


def test_import_refuses_tools_the_organization_does_not_have(org_a, org_b):
    http_tool(org_a.organization, "lookup_asset")
    http_tool(org_b.organization, "old_lookup", enabled=False)
    agent = with_grants(published_agent(org_b.organization, slug="bot"), ["calculator"])
    document = doc(
        metadata__slug="bot",
        spec__tools=["lookup_asset", "calculator", {"tool": "old_lookup", "min_role": "admin"}, "search"],
    )
    client = org_b.client("operator")
    for update in (False, True):
        response = import_yaml(client, document, update=update)
        assert response.status_code == 400
        error = response.json()["error"]
        assert error["code"] == "unknown_tools"
        assert error["details"]["tools"] == ["lookup_asset", "old_lookup", "search"]
        assert set(error["details"]["fields"]) == {"spec.tools[0]", "spec.tools[2]", "spec.tools[3]"}
        assert error["message"].startswith("spec.tools: Unknown tools: lookup_asset, old_lookup, search.")
    # Nothing changed.
    assert Agent.objects.filter(organization=org_b.organization).count() == 1
    assert selectors.agent_tool_grants(agent) == [{"tool": "calculator", "min_role": None, "requires_approval": None}]
    agent.refresh_from_db()
    assert agent.name != "Imported"
    # The organization that has the HTTP tool can import the grant.
    response = import_yaml(org_a.client("operator"), doc(spec__tools=["lookup_asset"]))
    assert response.status_code == 201, response.json()
    assert selectors.agent_tool_grants(Agent.objects.get(pk=response.json()["id"])) == [
        {"tool": "lookup_asset", "min_role": None, "requires_approval": None}
    ]


def test_import_with_update_replaces_the_definition(org_a):
    agent = published_agent(org_a.organization, **DEFINITION)
    client = org_a.client("operator")
    document = VALID.replace("slug: imported", "slug: support")
    conflict = import_yaml(client, document)
    assert conflict.status_code == 409
    assert conflict.json()["error"]["code"] == "slug_taken"
    assert "metadata.slug" in conflict.json()["error"]["details"]["fields"]
    assert definition(agent) == DEFINITION

    response = import_yaml(client, document, update=True)
    assert response.status_code == 200, response.json()
    assert response.json()["id"] == str(agent.pk)
    # Keys the document leaves out take their defaults.
    assert definition(agent) == {
        "name": "Imported",
        "slug": "support",
        "description": "",
        "industry": "",
        "system_prompt": "",
        "model": "offline",
        "fallback_models": [],
        "temperature": 0.7,
        "max_output_tokens": 1024,
        "max_tool_rounds": 5,
        "response_cache": "off",
    }
    assert response.json()["updated_by"] == "alpha-operator"
    assert response.json()["live_version"]["number"] == 1  # importing never publishes
    assert response.json()["has_unpublished_changes"] is True
    # With update and no such agent, it is created.
    assert import_yaml(client, VALID, update=True).status_code == 201


@pytest.mark.parametrize("content_type", ["application/yaml", "text/yaml", "application/x-yaml; charset=utf-8"])
def test_yaml_media_types(org_a, content_type):
    response = import_yaml(org_a.client("operator"), VALID, content_type=content_type)
    assert response.status_code == 201, response.json()


# --- errors ------------------------------------------------------------------------------------------


def doc(**replace):
    """VALID with lines replaced: key 'metadata.name' -> new text for that line."""
    body = {
        "apiVersion": "agenthub/v1",
        "kind": "Agent",
        "metadata": {"name": "Imported", "slug": "imported"},
        "spec": {"model": "offline"},
    }
    for path, value in replace.items():
        target = body
        *parents, last = path.split("__")
        for parent in parents:
            target = target[parent]
        if value is ...:
            del target[last]
        else:
            target[last] = value
    return yaml.safe_dump(body)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("- a\n- b\n", {"non_field_errors"}),
        ("just text\n", {"non_field_errors"}),
        ("42\n", {"non_field_errors"}),
        ("", {"non_field_errors"}),
        ("   \n", {"non_field_errors"}),
        (doc(apiVersion="agenthub/v2"), {"apiVersion"}),
        (doc(apiVersion=...), {"apiVersion"}),
        (doc(kind="Workflow"), {"kind"}),
        (doc(owner="me"), {"owner"}),
        (doc(metadata=...), {"metadata"}),
        (doc(metadata=["a"]), {"metadata"}),
        (doc(spec="text"), {"spec"}),
        (doc(metadata__owner="me"), {"metadata.owner"}),
        (doc(metadata__name=...), {"metadata.name"}),
        (doc(metadata__name=""), {"metadata.name"}),
        (doc(metadata__name=123), {"metadata.name"}),
        (doc(metadata__name="x" * 121), {"metadata.name"}),
        (doc(metadata__slug="Not a slug"), {"metadata.slug"}),
        (doc(metadata__industry="astrology"), {"metadata.industry"}),
        (doc(metadata__description="x" * 2001), {"metadata.description"}),
        (doc(spec__temp=1), {"spec.temp"}),
        (doc(spec__model=...), {"spec.model"}),
        (doc(spec__model="gpt-9"), {"spec.model"}),
        (doc(spec__model=["offline"]), {"spec.model"}),
        (doc(spec__temperature="hot"), {"spec.temperature"}),
        (doc(spec__temperature=True), {"spec.temperature"}),
        (doc(spec__temperature=3), {"spec.temperature"}),
        (doc(spec__temperature=float("nan")), {"spec.temperature"}),
        (doc(spec__max_output_tokens=1.5), {"spec.max_output_tokens"}),
        (doc(spec__max_output_tokens=0), {"spec.max_output_tokens"}),
        (doc(spec__max_tool_rounds=99), {"spec.max_tool_rounds"}),
        (doc(spec__fallback_models="gpt-4o"), {"spec.fallback_models"}),
        (doc(spec__fallback_models=[1]), {"spec.fallback_models"}),
        (doc(spec__fallback_models=["offline"]), {"spec.fallback_models"}),
        (doc(spec__tools="search"), {"spec.tools"}),
        (doc(spec__tools={"tool": "calculator"}), {"spec.tools"}),
        (doc(spec__tools=["calculator"] * 101), {"spec.tools"}),
        (doc(spec__tools=[5]), {"spec.tools[0]"}),
        (doc(spec__tools=["calculator", ["current_time"]]), {"spec.tools[1]"}),
        (doc(spec__tools=[""]), {"spec.tools[0].tool"}),
        (doc(spec__tools=[{"min_role": "admin"}]), {"spec.tools[0].tool"}),
        (doc(spec__tools=[{"tool": 7}]), {"spec.tools[0].tool"}),
        (doc(spec__tools=[{"tool": "calculator", "role": "admin"}]), {"spec.tools[0].role"}),
        (doc(spec__tools=["calculator", {"tool": "send_email", "min_role": "boss"}]), {"spec.tools[1].min_role"}),
        (doc(spec__tools=[{"tool": "calculator", "min_role": 3}]), {"spec.tools[0].min_role"}),
        (doc(spec__tools=[{"tool": "calculator", "requires_approval": "yes"}]), {"spec.tools[0].requires_approval"}),
        (doc(spec__tools=[{"tool": "calculator", "requires_approval": 1}]), {"spec.tools[0].requires_approval"}),
        (doc(spec__tools=["calculator", "send_email", "calculator"]), {"spec.tools[2]"}),
        (doc(spec__tools=["calculator", {"tool": "calculator", "min_role": "admin"}]), {"spec.tools[1]"}),
        (
            doc(spec__tools=[{"tool": "calculator", "min_role": "boss", "requires_approval": "no"}, 1]),
            {"spec.tools[0].min_role", "spec.tools[0].requires_approval", "spec.tools[1]"},
        ),
        (doc(spec__system_prompt="x" * 20001), {"spec.system_prompt"}),
        (doc(spec__system_prompt="a\x00b"), {"spec.system_prompt"}),
        (doc(version={"number": -1}), {"version.number"}),
        (doc(version={"number": 1, "author": "x"}), {"version.author"}),
        (doc(version="v1"), {"version"}),
        (
            doc(kind="Agents", spec__temperature="hot", metadata__slug=...),
            {"kind", "spec.temperature", "metadata.slug"},
        ),
    ],
)
def test_field_path_errors(org_a, text, expected):
    response = import_yaml(org_a.client("operator"), text)
    body = response.json()
    assert body["error"]["code"] == "validation_error", body
    assert set(fields_of(response)) == expected
    assert body["error"]["message"]
    assert not Agent.objects.exists()


@pytest.mark.parametrize(
    "text",
    [
        "apiVersion: agenthub/v1\nkind: [Agent\n",
        "a: b\n  c: d\n",
        "metadata: {name: x\n",
        "a: !!python/object/apply:os.system ['true']\n",
        "base: &b {name: x}\nmetadata: *b\n",
        "a: &a [1]\nb: [*a, *a, *a]\n",
        "[" * 5000 + "]" * 5000,
    ],
)
def test_invalid_yaml(org_a, text):
    response = import_yaml(org_a.client("operator"), text)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_yaml"
    assert "non_field_errors" in error["details"]["fields"]
    assert not Agent.objects.exists()


def test_invalid_yaml_reports_the_position(org_a):
    response = import_yaml(org_a.client("operator"), "apiVersion: agenthub/v1\nkind: [Agent\n")
    error = response.json()["error"]
    assert (error["details"]["line"], error["details"]["column"]) == (3, 1)
    assert error["message"].startswith("The document is not valid YAML: line 3, column 1:")


def test_bad_bodies(org_a, settings):
    client = org_a.client("operator")
    not_utf8 = client.post(f"{URL}/import", "name: caf\xe9".encode("latin-1"), content_type="application/yaml")
    assert (not_utf8.status_code, not_utf8.json()["error"]["code"]) == (400, "parse_error")
    assert fields_of(client.post(f"{URL}/import", {"yml": VALID}, format="json")) == {
        "yml": ["Unknown field. Allowed fields: yaml."]
    }
    assert "yaml" in fields_of(client.post(f"{URL}/import", {}, format="json"))
    assert set(fields_of(client.post(f"{URL}/import", {"yaml": 5}, format="json"))) == {"non_field_errors"}
    update = client.post(f"{URL}/import?update=maybe", VALID, content_type="application/yaml")
    assert "update" in fields_of(update)
    wrong_type = client.post(f"{URL}/import", VALID, content_type="text/plain")
    assert wrong_type.status_code == 415
    settings.API_MAX_BODY_BYTES = 2000
    huge = VALID + "# " + "x" * 3000 + "\n"
    assert import_yaml(client, huge).status_code == 413
    assert client.post(f"{URL}/import", {"yaml": huge[:1900]}, format="json").status_code == 201
    assert not Agent.objects.exclude(slug="imported").exists()


def test_service_refuses_documents_over_the_limit(org_a, settings):
    settings.API_MAX_BODY_BYTES = 100
    from agenthub.errors import ApplicationError

    with pytest.raises(ApplicationError) as exc:
        yamldoc.agent_import_yaml(organization=org_a.organization, user=None, text=VALID * 3)
    assert (exc.value.code, exc.value.status_code) == ("payload_too_large", 413)


# --- management commands -------------------------------------------------------------------------------


def run(*args, stdin=None):
    out, err = StringIO(), StringIO()
    if stdin is not None:
        original = sys.stdin
        sys.stdin = io.TextIOWrapper(io.BytesIO(stdin.encode()))
    try:
        call_command(*args, stdout=out, stderr=err)
    finally:
        if stdin is not None:
            sys.stdin = original
    return out.getvalue(), err.getvalue()


def test_commands_round_trip(org_a, org_b, tmp_path):
    source = with_grants(published_agent(org_a.organization, **DEFINITION))
    out, _ = run("export_agent", "--org", "alpha", "support")
    assert out == yamldoc.agent_export_yaml(agent=Agent.objects.get(pk=source.pk))
    path = tmp_path / "support.yaml"
    _, err = run("export_agent", "--org", "alpha", "support", "-o", str(path))
    assert path.read_text(encoding="utf-8") == out
    assert "Exported support" in err

    out, _ = run("import_agent", "--org", "bravo", str(path), "--user", "bravo-operator")
    assert "Created agent support" in out
    copy = Agent.objects.get(organization=org_b.organization, slug="support")
    assert definition(copy) == DEFINITION
    assert copy.created_by == org_b.users["operator"]
    assert selectors.agent_tool_grants(copy) == STORED_GRANTS

    with pytest.raises(CommandError, match="slug_taken"):
        run("import_agent", "--org", "bravo", str(path))
    path.write_text(path.read_text().replace("name: Support assistant", "name: Renamed"), encoding="utf-8")
    out, _ = run("import_agent", "--org", "bravo", str(path), "--update")
    assert "Updated agent support" in out
    copy.refresh_from_db()
    assert copy.name == "Renamed"
    assert Agent.objects.filter(organization=org_b.organization).count() == 1

    out, _ = run("import_agent", "--org", "alpha", "-", "--update", stdin=VALID)
    assert "Created agent imported" in out


def test_export_of_a_version(org_a):
    agent = published_agent(org_a.organization, slug="bot", system_prompt="One.")
    agent_update(agent=agent, user=None, data={"system_prompt": "Two."})
    out, _ = run("export_agent", "--org", "alpha", "bot", "--version-number", "1")
    assert yaml.safe_load(out)["spec"]["system_prompt"] == "One."
    with pytest.raises(CommandError, match="has no version 4"):
        run("export_agent", "--org", "alpha", "bot", "--version-number", "4")


def test_import_command_prints_errors_by_field(org_a, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(doc(kind="Agents", spec__temperature=9, metadata__slug=...), encoding="utf-8")
    err = StringIO()
    with pytest.raises(CommandError, match=r"Import failed \(validation_error\): 2 error\(s\)"):
        call_command("import_agent", "--org", "alpha", str(path), stdout=StringIO(), stderr=err)
    # Structure and types are checked first; values (the temperature range) once those are right.
    assert err.getvalue().splitlines() == [
        "  kind: Must be 'Agent'.",
        "  metadata.slug: This field is required.",
    ]
    assert not Agent.objects.exists()

    path.write_text(doc(spec__temperature=9), encoding="utf-8")
    err = StringIO()
    with pytest.raises(CommandError):
        call_command("import_agent", "--org", "alpha", str(path), stdout=StringIO(), stderr=err)
    assert "spec.temperature: Ensure this value is less than or equal to 2.0." in err.getvalue()

    path.write_text(doc(spec__tools=["calculator", "search", {"tool": "send_email", "min_role": "boss"}]))
    err = StringIO()
    with pytest.raises(CommandError, match=r"Import failed \(validation_error\): 1 error\(s\)"):
        call_command("import_agent", "--org", "alpha", str(path), stdout=StringIO(), stderr=err)
    assert err.getvalue().splitlines() == [
        "  spec.tools[2].min_role: Must be one of owner, admin, operator, member, viewer, or null for the tool's "
        "own minimum role."
    ]
    path.write_text(doc(spec__tools=["calculator", "search"]))
    err = StringIO()
    with pytest.raises(CommandError, match=r"Import failed \(unknown_tools\): 1 error\(s\)"):
        call_command("import_agent", "--org", "alpha", str(path), stdout=StringIO(), stderr=err)
    assert err.getvalue().splitlines() == [
        "  spec.tools[1]: Unknown tool 'search'. Choose a tool from /api/v1/tools (disabled HTTP tools cannot be "
        "granted)."
    ]
    assert not Agent.objects.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("import_agent", "--org", "nope", "x.yaml"), "No organization has the slug 'nope'"),
        (("import_agent", "--org", "alpha", "/no/such/file.yaml"), "Cannot read /no/such/file.yaml"),
        (("import_agent", "--org", "alpha", "x.yaml", "--user", "ghost"), "No user has the username 'ghost'"),
        (("import_agent", "--org", "alpha", "x.yaml", "--user", "bravo-owner"), "not a member of alpha"),
        (("export_agent", "--org", "nope", "bot"), "No organization has the slug 'nope'"),
        (("export_agent", "--org", "alpha", "ghost"), "No agent with the slug 'ghost'"),
        (("export_agent", "--org", "alpha", "bot", "-o", "/no/such/dir/x.yaml"), "Cannot write"),
    ],
)
def test_command_errors(org_a, org_b, args, message):
    AgentFactory(organization=org_a.organization, slug="bot")
    with pytest.raises(CommandError, match=message):
        run(*args)
    assert Agent.objects.count() == 1


def test_response_cache_reads_a_bare_off_and_refuses_unknown_modes(org_a):
    client = org_a.client("operator")
    response = import_yaml(client, VALID + "  response_cache: off\n")
    assert response.status_code == 201, response.content
    assert response.json()["response_cache"] == "off"

    response = import_yaml(client, VALID.replace("imported", "cached") + "  response_cache: always\n")
    assert response.json()["response_cache"] == "always"

    fields = fields_of(import_yaml(client, VALID.replace("imported", "other") + "  response_cache: sometimes\n"))
    assert list(fields) == ["spec.response_cache"]
