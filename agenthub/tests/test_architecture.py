"""The direction of imports (docs/architecture.md), enforced.

Every import statement of the project's code counts, including the ones
inside functions: a lazy import hides a dependency, it does not remove it.
Tests and migrations are left out (tests may reach anything; migrations are
history).
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Lowest first: an app imports only from apps before it in this list.
APP_ORDER = ["accounts", "integrations", "billing", "tools", "agents", "chat"]
# The project package is the bottom library (errors, db, rate limits, …)
# except for the modules that assemble the apps into one program.
COMPOSITION_ROOTS = {"agenthub.urls", "agenthub.asgi", "agenthub.routing", "agenthub.wsgi"}
# Inside an app: what the domain layers (services, selectors, the runtime,
# models) must never import, because these call them.
ENTRY_LAYERS = ("apis", "admin", "consumers", "tasks", "urls", "openai_urls", "routing", "management", "receivers")
DOMAIN_LAYERS = ("services", "selectors", "runtime", "models", "definition", "registry")
# Big modules the size rule allows, and why (named in docs/architecture.md).
LARGE_MODULES = {
    "agents/catalog.py": "data: the industry template catalog",
}
MAX_LINES = 500


def _modules():
    for path in sorted(ROOT.rglob("*.py")):
        relative = path.relative_to(ROOT)
        parts = relative.parts
        if parts[0] not in (*APP_ORDER, "agenthub") or "tests" in parts or "migrations" in parts:
            continue
        name = ".".join(relative.with_suffix("").parts).removesuffix(".__init__")
        yield name, path


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _app(module: str) -> str:
    return module.split(".", 1)[0]


GRAPH = {name: _imports(path) for name, path in _modules()}


def test_the_graph_is_not_empty():
    assert {"chat.runtime.turn", "tools.services.calls", "agents.services.agents"} <= set(GRAPH)
    # Lazy imports count too: the graph sees imports inside functions.
    assert "tools.services.calls" in GRAPH["chat.services.turns"]
    assert "tools.services.catalog" in GRAPH["agents.services.publishing"]


def test_apps_import_only_apps_below_them():
    upward = []
    for module, imported in GRAPH.items():
        app = _app(module)
        if app == "agenthub":
            continue
        for target in imported:
            other = _app(target)
            if other in APP_ORDER and other != app and APP_ORDER.index(other) > APP_ORDER.index(app):
                upward.append(f"{module} imports {target}")
    assert upward == [], "lower apps must not import higher ones:\n" + "\n".join(sorted(upward))


def test_the_project_package_imports_no_app_except_where_it_assembles_them():
    found = [
        f"{module} imports {target}"
        for module, imported in GRAPH.items()
        if _app(module) == "agenthub" and module not in COMPOSITION_ROOTS and not module.startswith("agenthub.settings")
        for target in imported
        if _app(target) in APP_ORDER
    ]
    assert found == []


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def test_domain_layers_never_import_the_entry_points_that_call_them():
    found = []
    for module, imported in GRAPH.items():
        if _layer(module) not in DOMAIN_LAYERS:
            continue
        for target in imported:
            if _app(target) in APP_ORDER and _layer(target) in ENTRY_LAYERS:
                found.append(f"{module} imports {target}")
    assert found == []


def test_the_chat_runtime_does_not_import_the_chat_services():
    found = [
        f"{module} imports {target}"
        for module, imported in GRAPH.items()
        if module.startswith("chat.runtime")
        for target in imported
        if target.startswith("chat.services") or target.startswith("tools.services") or target.endswith(".tasks")
    ]
    assert found == [], "the runtime is handed its collaborators (chat.runtime.ports)"


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, result = {}, {}, [], set(), []
    counter = [0]

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in graph:
                continue
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                result.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return result


def test_no_module_imports_itself_back_through_others():
    # A package's __init__ that re-exports its own modules is not a cycle.
    graph = {
        module: {t for t in imported if not (module.startswith(t + ".") or t.startswith(module + "."))}
        for module, imported in GRAPH.items()
    }
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_cycles():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_modules_stay_readable():
    too_long = []
    for _name, path in _modules():
        relative = str(path.relative_to(ROOT))
        lines = len(path.read_text().splitlines())
        if lines > MAX_LINES and relative not in LARGE_MODULES:
            too_long.append(f"{relative}: {lines} lines")
    assert too_long == [], "split these along a seam (docs/architecture.md)"


# Where sync_to_async may run code: nothing there touches the database.
SYNC_TO_ASYNC_ALLOWED = {"agenthub/middleware.py"}  # static files


def test_async_code_reaches_the_database_only_through_agenthub_db():
    """A sync function run with ``sync_to_async`` inside a request runs on
    that request's own thread; a database connection it opens there goes
    back to the pool only if Django's per-request housekeeping runs in that
    thread, which the lean API handler skips.  ``agenthub.db`` returns its
    connections itself, so async code uses it (the channel auth middleware
    uses Channels' ``database_sync_to_async``, which closes them)."""
    offenders = []
    for _name, path in _modules():
        relative = str(path.relative_to(ROOT))
        if relative in SYNC_TO_ASYNC_ALLOWED or "/tests/" in relative:
            continue
        if "sync_to_async(" in path.read_text().replace("database_sync_to_async(", ""):
            offenders.append(relative)
    assert offenders == []
