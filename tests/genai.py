"""GenAI span attributes as the instrumentations write them, for spool records built by hand.

`instrumentor` is what the OpenTelemetry GenAI instrumentors (opentelemetry-instrumentation-genai-openai /
-anthropic 1.3b0) set on their `chat <model>` span; `anthropic_sdk` what the anthropic SDK sets on its own
`anthropic.messages.create` span, nested under the instrumentor's with the same usage (both read from a real run
against a local stand-in). Input tokens include cached ones in both.
"""

from __future__ import annotations

from typing import Any

INSTRUMENTOR_SCOPES = {
    "openai": "opentelemetry.instrumentation.genai.openai",
    "anthropic": "opentelemetry.instrumentation.genai.anthropic",
}
ANTHROPIC_SDK_SCOPE = "com.anthropic.sdk.python"


def usage(
    input_tokens: int | None,
    output_tokens: int | None,
    cache_read: int | None = None,
    cache_write: int | None = None,
) -> dict[str, Any]:
    """The `gen_ai.usage.*` attributes (none for a call that reported no usage)."""
    found = {
        "gen_ai.usage.input_tokens": input_tokens,
        "gen_ai.usage.output_tokens": output_tokens,
        "gen_ai.usage.cache_read.input_tokens": cache_read,
        "gen_ai.usage.cache_write.input_tokens": cache_write,
    }
    return {k: v for k, v in found.items() if v is not None}


def instrumentor(
    provider: str,
    model: str,
    tokens: dict[str, Any],
    *,
    response_model: str | None = None,
    stream: bool = False,
) -> dict[str, Any]:
    """The instrumentor's `chat <model>` span attributes."""
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": provider,
        "gen_ai.request.model": model,
        "gen_ai.response.model": response_model or model,
        **tokens,
    }
    if stream:
        attributes["gen_ai.request.stream"] = True
    return attributes


def anthropic_sdk(model: str, tokens: dict[str, Any], *, stream: bool = False) -> dict[str, Any]:
    """The anthropic SDK's own `anthropic.messages.create` span attributes."""
    attributes: dict[str, Any] = {
        "gen_ai.provider.name": "anthropic",
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": model,
        "gen_ai.response.model": model,
        "server.address": "api.anthropic.com",
        **tokens,
    }
    if stream:
        attributes["gen_ai.request.stream"] = True
    return attributes
