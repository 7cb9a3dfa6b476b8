"""The logs a server process writes, with logging configured as it does it
(Django's defaults, then LOGGING): one line per 4xx, no traceback for a 403,
nothing for a static file."""

import copy
import io
import json
import logging
from unittest import mock

import pytest
from django.utils.log import configure_logging

from accounts.tests.factories import UserFactory
from agenthub.server import StaticQuietAccessLog

STATIC_FILE = "/static/admin/css/base.css"


def _loggers():
    return [logging.root, *(lg for lg in logging.root.manager.loggerDict.values() if isinstance(lg, logging.Logger))]


def _pytests(handler) -> bool:
    """pytest's capture handlers come and go with each test phase."""
    return type(handler).__module__.startswith("_pytest")


@pytest.fixture
def server_log(settings):
    """Logging configured from ``settings.LOGGING`` (root at INFO) as under
    DEBUG, where Django's own console handler is live, writing to the
    returned buffer; the previous configuration comes back afterwards."""
    saved = [(lg, lg.handlers[:], lg.filters[:], lg.level, lg.propagate, lg.disabled) for lg in _loggers()]
    settings.DEBUG = True
    config = copy.deepcopy(settings.LOGGING)
    config["root"]["level"] = "INFO"
    stream = io.StringIO()
    with mock.patch("sys.stderr", stream):  # where StreamHandler() writes, Django's and ours
        configure_logging(settings.LOGGING_CONFIG, config)
    yield stream
    for logger, handlers, filters, level, propagate, disabled in saved:
        current = [h for h in logger.handlers if _pytests(h)]
        logger.handlers[:] = [h for h in handlers if not _pytests(h)] + current
        logger.filters[:] = filters
        logger.propagate, logger.disabled = propagate, disabled
        logger.setLevel(level)


def lines_about(stream: io.StringIO, text: str) -> list[str]:
    return [line for line in stream.getvalue().splitlines() if text in line]


@pytest.mark.django_db
def test_a_4xx_is_logged_once(client, server_log):
    assert client.get("/api/v1/nowhere").status_code == 404
    assert client.get("/api/v1/me").status_code == 401

    for path in ("/api/v1/nowhere", "/api/v1/me"):
        lines = lines_about(server_log, path)
        assert len(lines) == 1, lines
        record = json.loads(lines[0])
        assert (record["level"], record["logger"]) == ("WARNING", "django.request")


@pytest.mark.django_db
def test_a_403_in_the_admin_is_one_warning_without_traceback(client, server_log, caplog):
    client.force_login(UserFactory(is_staff=True))  # staff, without permissions

    with caplog.at_level(logging.WARNING, logger="django.request"):
        assert client.get("/admin/accounts/user/").status_code == 403

    lines = lines_about(server_log, "/admin/accounts/user/")
    assert len(lines) == 1, lines
    record = json.loads(lines[0])
    assert record["level"] == "WARNING"
    assert record["message"] == "Forbidden (Permission denied): /admin/accounts/user/"
    assert "exc_info" not in record
    assert "Traceback" not in server_log.getvalue()
    [logged] = [r for r in caplog.records if r.name == "django.request"]
    assert logged.exc_info is None


def test_a_500_keeps_its_traceback(server_log):
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("django.request").error(
            "Internal Server Error: /x", exc_info=True, extra={"status_code": 500}
        )
    [line] = lines_about(server_log, "Internal Server Error")
    assert "RuntimeError: boom" in json.loads(line)["exc_info"]


@pytest.mark.django_db
def test_a_static_file_request_logs_nothing(client, server_log):
    assert client.get(STATIC_FILE).status_code == 200
    assert lines_about(server_log, "/static/") == []


def test_runserver_access_log_skips_static_files_only(server_log):
    # daphne's runserver logs each request to django.channels.server.
    access = logging.getLogger("django.channels.server")
    for path in (STATIC_FILE, "/api/v1/me"):
        details = {"method": "GET", "path": path, "status": 200, "time_taken": 0.01, "client": "127.0.0.1:1"}
        access.info("HTTP %(method)s %(path)s %(status)s [%(time_taken).2f, %(client)s]", details)
    assert lines_about(server_log, "/static/") == []
    assert len(lines_about(server_log, "HTTP GET /api/v1/me 200")) == 1


def test_server_access_log_skips_static_files_only():
    stream = io.StringIO()
    access_log = StaticQuietAccessLog(stream)
    for path in (STATIC_FILE, "/api/v1/me", "/statics", "/api/static/x"):
        access_log("http", "complete", {"path": path, "status": 200, "method": "GET", "client": "1.2.3.4:5", "size": 9})
    access_log("websocket", "connected", {"path": "/ws/chat/", "client": "1.2.3.4:5"})
    logged = stream.getvalue()
    assert STATIC_FILE not in logged
    assert '"GET /api/v1/me" 200 9' in logged
    assert '"GET /statics" 200' in logged
    assert '"GET /api/static/x" 200' in logged
    assert '"WSCONNECT /ws/chat/"' in logged


def test_zz_the_logging_configuration_is_back(caplog, settings):
    # Runs after the tests above (file order): the root logger is as the
    # session configured it, and pytest's capture still works.
    logging.getLogger("agenthub.test").warning("still captured")
    assert [r.message for r in caplog.records] == ["still captured"]
    assert logging.getLogger().level == logging.getLevelName(settings.LOG_LEVEL)
    assert logging.getLogger("django").handlers == []
