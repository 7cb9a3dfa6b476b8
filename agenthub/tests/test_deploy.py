"""``manage.py check --deploy`` is clean under production settings."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_check(extra_env):
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "DJANGO_SETTINGS_MODULE"}
    }
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "agenthub.settings.production",
            "ALLOWED_HOSTS": "agenthub.example.com",
            **extra_env,
        }
    )
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def random_key() -> str:
    # Made at run time: any key written in the repository is refused.
    return secrets.token_urlsafe(64)


def test_check_deploy_is_clean_under_production_settings():
    result = run_check({"SECRET_KEY": random_key()})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


@pytest.mark.parametrize(
    ("key", "message"),
    [
        # The development and test settings' keys, and one from the Docker files' history.
        ("dev-only-insecure-secret-key-change-me-in-production-0123456789", "development key"),
        ("test-secret-key-not-for-production-0123456789abcdefghijklmnopqrstuvwxyz", "development key"),
        ("a" * 64, "different characters"),
        ("short-but-random-Zq8", "at least 50 characters"),
    ],
)
def test_production_refuses_public_or_weak_keys(key, message):
    result = run_check({"SECRET_KEY": key})
    assert result.returncode != 0
    assert message in result.stderr
    assert key not in result.stderr + result.stdout  # the refusal does not print the key


# Random-looking, but written here: so it is public, and production refuses it.
DOCUMENTED_KEY = "Qm7vR2kLp9XwT4zN8cYb3HsJ6fGd1AeU5oVi0rKqPl-MnBx_WtZy2Cu7Ej4Sa9Dh"


def test_production_refuses_a_key_found_in_the_repository():
    result = run_check({"SECRET_KEY": DOCUMENTED_KEY})
    assert result.returncode != 0
    assert "written in the repository (agenthub/tests/test_deploy.py)" in result.stderr


def test_key_search_skips_installed_packages(tmp_path):
    from agenthub.security import find_key_in_repository, secret_key_problem

    key = random_key()
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "setup.md").write_text(f"export SECRET_KEY={key}\n")
    (tmp_path / ".venv").mkdir()
    (tmp_path / ".venv" / "elsewhere.py").write_text(f"KEY = {key!r}\n")  # installed packages are not the repository
    assert find_key_in_repository(key, tmp_path) == tmp_path / "docs" / "setup.md"
    problem = secret_key_problem(key, tmp_path)
    assert "written in the repository (docs/setup.md)" in problem
    assert secret_key_problem(random_key(), tmp_path) is None
    assert secret_key_problem(random_key(), ROOT) is None


def test_check_deploy_reports_a_public_key_under_other_settings():
    """Under settings that let the key through (local), check --deploy still says so."""
    env = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "DJANGO_SETTINGS_MODULE"}}
    env.update({"DJANGO_SETTINGS_MODULE": "agenthub.settings.local", "DEBUG": "false"})
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "agenthub.E001" in result.stderr + result.stdout
    assert "development key" in result.stderr + result.stdout


def test_check_deploy_warns_when_metrics_are_open():
    result = run_check({"SECRET_KEY": random_key(), "METRICS_ALLOW_ANONYMOUS": "true"})
    assert result.returncode != 0
    assert "agenthub.W001" in result.stderr + result.stdout
    closed = run_check({"SECRET_KEY": random_key(), "METRICS_ALLOW_ANONYMOUS": "true", "METRICS_TOKEN": "t" * 40})
    assert closed.returncode == 0, closed.stdout + closed.stderr


def test_production_refuses_a_missing_secret_key():
    result = run_check({"SECRET_KEY": ""})
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


# A Fernet key written here: public, so production refuses it.
DOCUMENTED_FERNET_KEY = "q3Y2bW9ja2Zlcm5ldGtleS1ub3QtcmVhbC0wMTIzNDU="


def test_production_refuses_an_encryption_key_found_in_the_repository():
    result = run_check({"SECRET_KEY": random_key(), "FIELD_ENCRYPTION_KEY": f"{DOCUMENTED_FERNET_KEY}"})
    assert result.returncode != 0
    assert "FIELD_ENCRYPTION_KEY is written in the repository" in result.stderr
