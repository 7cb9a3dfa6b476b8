"""Helpers shared by the integrations tests."""

from integrations.llm.types import ChatMessage, ChatRequest

MOCK_TOKENS = 8  # answer length of the session's mock server


def user_request(text: str, *, model: str = "mock-model", **kwargs) -> ChatRequest:
    return ChatRequest(model=model, messages=(ChatMessage(role="user", content=text),), **kwargs)


async def collect(events) -> list:
    return [event async for event in events]
