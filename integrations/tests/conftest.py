"""The integrations tests use the session's mock model server and
``llm_settings`` from the root conftest."""

import pytest

from integrations.llm import router


@pytest.fixture
async def close_llm_clients():
    """Closes the providers' HTTP clients of the test's event loop."""
    yield
    await router.aclose_providers()
