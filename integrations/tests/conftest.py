"""The mock model server the integrations tests talk to over HTTP."""

import pytest

from integrations.llm import router
from integrations.llm.mock_server import MockConfig, MockServer
from integrations.tests.helpers import MOCK_TOKENS


@pytest.fixture(scope="session")
def mock_server():
    """One mock server for the session: 8-token answers, no delays.  Tests
    inject faults per request with ``[[mock:...]]`` directives; its ``stats``
    are shared, so compare differences."""
    with MockServer(MockConfig(tokens=MOCK_TOKENS, retry_after_ms=10)) as server:
        yield server


@pytest.fixture
def llm_settings(settings, mock_server):
    """Settings that route every non-offline model to the mock server."""
    settings.OPENAI_BASE_URL = mock_server.base_url
    settings.OPENAI_API_KEY = ""
    settings.LLM_TIMEOUT_SECONDS = 5.0
    settings.LLM_CONNECT_TIMEOUT_SECONDS = 2.0
    settings.LLM_MAX_RETRIES = 0
    settings.LLM_OFFLINE_TOKEN_DELAY_MS = 0
    return settings


@pytest.fixture
async def close_llm_clients():
    """Closes the providers' HTTP clients of the test's event loop."""
    yield
    await router.aclose_providers()
