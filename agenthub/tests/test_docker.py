"""The container files agree with the code they run.

docker/compose.yaml, docker/Dockerfile, docker/entrypoint.sh and .env.example
are checked against the settings, the Celery configuration and the URLconf, so
renaming a queue, a settings variable or a health URL breaks a test instead of
a deployment.  No database and no Docker daemon are needed.
"""

import importlib.util
import ipaddress
import json
import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml
from django.conf import settings
from django.urls import Resolver404, resolve

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
COMPOSE_FILE = DOCKER / "compose.yaml"
DOCKERFILE = DOCKER / "Dockerfile"
ENTRYPOINT = DOCKER / "entrypoint.sh"
ENV_EXAMPLE = ROOT / ".env.example"
SETTINGS_DIR = ROOT / "agenthub" / "settings"

APP_SERVICES = ("web", "worker", "beat")
# Read by something other than the settings: manage.py/asgi/celery, the
# entrypoint, prometheus_client, and the model layer.
READ_ELSEWHERE = {
    "DJANGO_SETTINGS_MODULE",
    "PROMETHEUS_MULTIPROC_DIR",
    "RUN_MIGRATIONS",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "AGENTHUB_DEFAULT_MODEL",
}
# Documented in .env.example for features that read them later.
DOCUMENTED_FOR_LATER = {"CONVERSATION_TTL_SECONDS"}

# env("NAME", ...) or env.<cast>("NAME", ...), the call possibly split over lines.
ENV_READ = re.compile(r"\benv(?:\.[a-z_]+)?\(\s*[\"']([A-Z][A-Z0-9_]*)[\"']")
URL_IN_TEXT = re.compile(r"https?://[^/\s\"']+(/[^\s\"'?#)]*)")


# --- helpers ---------------------------------------------------------------------


def settings_env_names() -> set[str]:
    names = set()
    for path in sorted(SETTINGS_DIR.glob("*.py")):
        names.update(ENV_READ.findall(path.read_text()))
    return names


def load_compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def as_argv(command) -> list[str]:
    return list(command) if isinstance(command, list) else shlex.split(command)


def environment(service: dict) -> dict:
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, None) for item in env)
    return env


def option(argv: list[str], *names: str) -> str:
    for index, arg in enumerate(argv):
        if arg in names:
            return argv[index + 1]
        for name in names:
            if name.startswith("--") and arg.startswith(name + "="):
                return arg.split("=", 1)[1]
    raise AssertionError(f"none of {names} in {argv}")


def listens_on_every_interface(argv: list[str]) -> bool:
    """A container's server must bind the unspecified address to be reachable."""
    return ipaddress.ip_address(option(argv, "-b", "--bind")).is_unspecified


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    instructions, pending = [], ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        keyword, _, arguments = line.partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
    return instructions


def dockerfile(keyword: str) -> list[str]:
    return [arguments for instruction, arguments in dockerfile_instructions() if instruction == keyword]


def runtime_stage() -> list[tuple[str, str]]:
    """Instructions of the last stage, the one the image is made of."""
    instructions = dockerfile_instructions()
    last_from = max(index for index, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    return instructions[last_from:]


def exec_form(arguments: str) -> list[str]:
    argv = json.loads(arguments)
    assert isinstance(argv, list), f"use the exec (JSON) form: {arguments}"
    return argv


def healthcheck_texts() -> list[str]:
    texts = [" ".join(as_argv(svc["healthcheck"]["test"])) for svc in load_compose()["services"].values()]
    texts += dockerfile("HEALTHCHECK")
    return texts


# --- compose ---------------------------------------------------------------------


def test_compose_defines_the_five_services():
    assert {"postgres", "redis", *APP_SERVICES} <= set(load_compose()["services"])


def test_every_service_has_a_healthcheck_and_app_services_wait_for_healthy_dependencies():
    services = load_compose()["services"]
    for name, service in services.items():
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
    for name in APP_SERVICES:
        depends_on = services[name]["depends_on"]
        assert {"postgres", "redis"} <= set(depends_on), name
        for dependency, condition in depends_on.items():
            assert condition == {"condition": "service_healthy"}, f"{name} -> {dependency}"


# daphne through agenthub.server, which closes oversized websocket frames with 1009.
SERVER_ARGV = ["python", "-m", "agenthub.server"]


def test_web_runs_daphne_on_the_asgi_application_and_publishes_its_port():
    web = load_compose()["services"]["web"]
    argv = as_argv(web["command"])
    assert argv[:3] == SERVER_ARGV
    assert argv[-1] == "agenthub.asgi:application" == f"{settings.ASGI_APPLICATION.rsplit('.', 1)[0]}:application"
    assert listens_on_every_interface(argv)
    port = option(argv, "-p", "--port")
    assert any(str(mapping).split(":")[-1] == port for mapping in web["ports"])


def test_worker_consumes_exactly_the_configured_queues():
    argv = as_argv(load_compose()["services"]["worker"]["command"])
    assert argv[:4] == ["celery", "-A", "agenthub", "worker"]
    queues = option(argv, "-Q", "--queues").split(",")
    assert len(queues) == len(set(queues))
    assert set(queues) == {queue.name for queue in settings.CELERY_TASK_QUEUES}


def test_beat_uses_the_configured_database_scheduler():
    argv = as_argv(load_compose()["services"]["beat"]["command"])
    assert argv[:4] == ["celery", "-A", "agenthub", "beat"]
    assert option(argv, "-S", "--scheduler") == settings.CELERY_BEAT_SCHEDULER


def test_only_web_runs_migrations():
    services = load_compose()["services"]
    assert str(environment(services["web"]).get("RUN_MIGRATIONS")) == "1"
    for name in ("worker", "beat"):
        assert str(environment(services[name]).get("RUN_MIGRATIONS", "0")) != "1", name


def test_app_services_set_only_variables_that_something_reads():
    known = settings_env_names() | READ_ELSEWHERE
    for name in APP_SERVICES:
        unknown = set(environment(load_compose()["services"][name])) - known
        assert not unknown, f"{name} sets variables nothing reads: {sorted(unknown)}"


def test_app_services_run_production_settings_that_exist():
    for name in APP_SERVICES:
        module = environment(load_compose()["services"][name])["DJANGO_SETTINGS_MODULE"]
        assert module == "agenthub.settings.production", name
        assert importlib.util.find_spec(module) is not None, module


def test_compose_requires_a_secret_key_and_turns_off_the_https_redirect():
    for name in APP_SERVICES:
        env = environment(load_compose()["services"][name])
        assert env["SECRET_KEY"].startswith("${SECRET_KEY:?"), name
        assert str(env["SECURE_SSL_REDIRECT"]).lower() == "false", name


# --- .env.example ----------------------------------------------------------------


def test_env_example_documents_every_variable():
    documented = re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", ENV_EXAMPLE.read_text(), flags=re.MULTILINE)
    assert len(documented) == len(set(documented)), "a variable is documented twice"
    expected = settings_env_names() | READ_ELSEWHERE | DOCUMENTED_FOR_LATER
    assert not expected - set(documented), f"missing from .env.example: {sorted(expected - set(documented))}"


def test_settings_regex_finds_the_variables():
    # Guard the guard: an unmatched call style would make the tests above vacuous.
    names = settings_env_names()
    assert {"SECRET_KEY", "DATABASE_URL", "REDIS_URL", "ALLOWED_HOSTS", "SECURE_SSL_REDIRECT", "STATIC_ROOT"} <= names


# --- health checks ---------------------------------------------------------------------


def test_healthcheck_urls_resolve():
    paths = [path for text in healthcheck_texts() for path in URL_IN_TEXT.findall(text)]
    assert "/health/live" in paths
    assert "/health/ready" in paths
    for path in paths:
        try:
            resolve(path)
        except Resolver404:
            pytest.fail(f"healthcheck URL {path} does not resolve")


def test_healthchecks_probe_the_port_daphne_binds():
    port = option(as_argv(load_compose()["services"]["web"]["command"]), "-p", "--port")
    for text in healthcheck_texts():
        for match in re.finditer(r"https?://[^/\s\"']+", text):
            assert match.group().endswith(f":{port}"), text


# --- Dockerfile -------------------------------------------------------------------------


def test_dockerfile_runs_as_a_non_root_user():
    users = [arguments.split(":")[0] for keyword, arguments in runtime_stage() if keyword == "USER"]
    assert users, "no USER in the final stage"
    assert users[-1] not in {"root", "0"}


def test_dockerfile_installs_the_system_packages_the_scripts_install():
    """WeasyPrint's libraries (invoice PDFs): the image has what scripts/run
    and .ci/run install on a machine."""
    script = (ROOT / "scripts" / "system-packages").read_text()
    packages = re.search(r"PACKAGES=\(([^)]*)\)", script).group(1).split()
    installs = " ".join(arguments for keyword, arguments in runtime_stage() if keyword == "RUN")
    assert "apt-get install" in installs
    assert all(package in installs.split() for package in packages), packages
    assert "scripts/system-packages" in (ROOT / "scripts" / "run").read_text()
    assert "scripts/system-packages" in (ROOT / ".ci" / "run").read_text()


def test_dockerfile_exposes_the_port_daphne_binds():
    cmd = exec_form(dockerfile("CMD")[-1])
    assert cmd[:3] == SERVER_ARGV and cmd[-1] == "agenthub.asgi:application"
    port = option(cmd, "-p", "--port")
    exposed = {item.split("/")[0] for arguments in dockerfile("EXPOSE") for item in arguments.split()}
    assert port in exposed
    assert listens_on_every_interface(cmd)


def test_dockerfile_entrypoint_exists_and_is_executable():
    workdir = dockerfile("WORKDIR")[-1]
    entrypoint = exec_form(dockerfile("ENTRYPOINT")[-1])[0]
    relative = os.path.relpath(entrypoint, workdir) if entrypoint.startswith("/") else entrypoint
    path = ROOT / relative
    assert path == ENTRYPOINT
    assert path.is_file()
    assert os.access(path, os.X_OK), f"chmod +x {relative}"
    assert path.read_text().startswith("#!/bin/sh\n")


def test_dockerfile_environment():
    env = " ".join(dockerfile("ENV"))
    assert "PYTHONUNBUFFERED=1" in env
    assert "PROMETHEUS_MULTIPROC_DIR=/tmp/prometheus" in env
    module = re.search(r"DJANGO_SETTINGS_MODULE=(\S+)", env).group(1)
    assert module == "agenthub.settings.production"
    assert importlib.util.find_spec(module) is not None


def test_collectstatic_secret_stays_in_its_build_step():
    runs = [arguments for arguments in dockerfile("RUN") if "collectstatic" in arguments]
    assert len(runs) == 1
    assert "--noinput" in runs[0]
    assert "DJANGO_SETTINGS_MODULE=agenthub.settings.production" in runs[0]
    # A random key made in the build step: production settings refuse any key
    # written in the repository.
    assert "SECRET_KEY=\"$(python -c 'import secrets; print(secrets.token_urlsafe(64))')\"" in runs[0]
    for keyword in ("ENV", "ARG"):
        assert not any("SECRET_KEY" in arguments for arguments in dockerfile(keyword)), keyword


# --- entrypoint -------------------------------------------------------------------------


@pytest.fixture
def run_entrypoint(tmp_path):
    """Run the entrypoint with a stand-in ``python`` that records its arguments."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "python-calls"
    fake_python = bin_dir / "python"
    fake_python.write_text(f'#!/bin/sh\necho "$*" >> "{calls}"\n')
    fake_python.chmod(0o755)

    def run(*command, **env):
        result = subprocess.run(
            ["sh", str(ENTRYPOINT), *command],
            env={"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", **env},
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        recorded = calls.read_text().splitlines() if calls.exists() else []
        return result, recorded

    return run


def test_entrypoint_empties_the_metrics_directory_and_execs_the_command(tmp_path, run_entrypoint):
    metrics_dir = tmp_path / "prometheus"
    (metrics_dir / "old").mkdir(parents=True)
    (metrics_dir / "counter_123.db").write_text("stale")
    (metrics_dir / "old" / "gauge_456.db").write_text("stale")

    result, python_calls = run_entrypoint("sh", "-c", "echo started; exit 7", PROMETHEUS_MULTIPROC_DIR=str(metrics_dir))

    assert result.returncode == 7, result.stderr
    assert result.stdout == "started\n"
    assert metrics_dir.is_dir()
    assert list(metrics_dir.iterdir()) == []
    assert python_calls == []  # no migrations unless asked


def test_entrypoint_creates_a_missing_metrics_directory(tmp_path, run_entrypoint):
    metrics_dir = tmp_path / "missing" / "prometheus"
    result, _ = run_entrypoint("true", PROMETHEUS_MULTIPROC_DIR=str(metrics_dir))
    assert result.returncode == 0, result.stderr
    assert metrics_dir.is_dir()


def test_entrypoint_migrates_when_asked(tmp_path, run_entrypoint):
    result, python_calls = run_entrypoint(
        "true", PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "prometheus"), RUN_MIGRATIONS="1"
    )
    assert result.returncode == 0, result.stderr
    assert python_calls == [f"{ROOT / 'manage.py'} migrate --noinput", f"{ROOT / 'manage.py'} billing_seed_prices"]


def test_entrypoint_refuses_to_clear_the_root_directory(run_entrypoint):
    result, python_calls = run_entrypoint("true", PROMETHEUS_MULTIPROC_DIR="/")
    assert result.returncode != 0
    assert python_calls == []
