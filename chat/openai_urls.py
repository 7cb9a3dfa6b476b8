from django.urls import path

from chat.apis import openai as openai_apis

urlpatterns = [
    path("chat/completions", openai_apis.ChatCompletionsApi.as_view(), name="openai-chat-completions"),
    path("models", openai_apis.ModelsApi.as_view(), name="openai-models"),
]
