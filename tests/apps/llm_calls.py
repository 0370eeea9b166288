"""An app that calls LLMs through the real openai and anthropic SDKs: sync, async, streamed with and without usage.

Run as `python llm_calls.py STANDIN_URL NONCE`. Each call's prompt carries a unique marker `PROMPT-MARKER-<label>-<NONCE>`
so a test can search the disk for it. Prints one JSON line per call with what the SDK parsed from the stand-in:
label, provider, model, response id, usage (`null` when the API reported none) and the reply text. Input tokens are
given as the GenAI conventions count them: cached tokens included (Anthropic's own `input_tokens` leaves them out).
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import anthropic
import openai

URL, NONCE = sys.argv[1], sys.argv[2]
KEY = "standin-dummy-key"
# Over 1024 stand-in tokens, so the second call with it reads the provider's prompt cache.
LONG_SYSTEM = "You are the shop assistant. Catalogue: " + " ".join(
    f"item-{n} costs {n}.50 EUR;" for n in range(400)
)


def marker(label: str) -> str:
    return f"PROMPT-MARKER-{label}-{NONCE}"


def report(
    label: str, provider: str, model: str, *, rid: str, usage: dict[str, int] | None, reply: str
) -> None:
    line = {
        "label": label,
        "provider": provider,
        "model": model,
        "response_id": rid,
        "usage": usage,
        "reply": reply,
    }
    print(json.dumps(line), flush=True)


def openai_usage(usage: Any) -> dict[str, int] | None:
    if usage is None:
        return None
    details = usage.prompt_tokens_details
    return {
        "input": usage.prompt_tokens,
        "output": usage.completion_tokens,
        "cache_read": details.cached_tokens if details else 0,
        "cache_write": 0,
    }


def anthropic_usage(usage: Any) -> dict[str, int]:
    read, write = usage.cache_read_input_tokens or 0, usage.cache_creation_input_tokens or 0
    return {
        "input": usage.input_tokens + read + write,
        "output": usage.output_tokens,
        "cache_read": read,
        "cache_write": write,
    }


def user(label: str) -> list[Any]:
    return [{"role": "user", "content": f"{marker(label)}: which mug goes with the kettle?"}]


def openai_sync(client: openai.OpenAI) -> None:
    for label, model in (
        ("oa-sync-mini", "gpt-4o-mini"),
        ("oa-sync-41", "gpt-4.1"),
        ("oa-sync-unknown", "shop-llm-1"),
    ):
        r = client.chat.completions.create(model=model, messages=user(label))
        report(
            label,
            "openai",
            model,
            rid=r.id,
            usage=openai_usage(r.usage),
            reply=r.choices[0].message.content or "",
        )
    for label in ("oa-cache-1", "oa-cache-2"):  # same system prompt twice: the second reads the cache
        messages = [{"role": "system", "content": LONG_SYSTEM}, *user(label)]
        r = client.chat.completions.create(model="gpt-4.1", messages=messages)
        report(
            label,
            "openai",
            "gpt-4.1",
            rid=r.id,
            usage=openai_usage(r.usage),
            reply=r.choices[0].message.content or "",
        )
    for label, model, include in (
        ("oa-stream-usage", "gpt-4o-mini", True),
        ("oa-stream-nousage", "gpt-4.1", False),
    ):
        options: Any = {"include_usage": True} if include else openai.omit
        stream = client.chat.completions.create(
            model=model, messages=user(label), stream=True, stream_options=options
        )
        parts, usage, rid = [], None, ""
        for chunk in stream:
            rid = chunk.id
            parts += [c.delta.content or "" for c in chunk.choices]
            usage = chunk.usage or usage
        report(label, "openai", model, rid=rid, usage=openai_usage(usage), reply="".join(parts))


async def openai_async(client: openai.AsyncOpenAI) -> None:
    r = await client.chat.completions.create(model="gpt-4o-mini", messages=user("oa-async"))
    report(
        "oa-async",
        "openai",
        "gpt-4o-mini",
        rid=r.id,
        usage=openai_usage(r.usage),
        reply=r.choices[0].message.content or "",
    )
    stream = await client.chat.completions.create(
        model="gpt-4.1", messages=user("oa-async-stream"), stream=True, stream_options={"include_usage": True}
    )
    parts, usage, rid = [], None, ""
    async for chunk in stream:
        rid = chunk.id
        parts += [c.delta.content or "" for c in chunk.choices]
        usage = chunk.usage or usage
    report("oa-async-stream", "openai", "gpt-4.1", rid=rid, usage=openai_usage(usage), reply="".join(parts))


def text_of(message: Any) -> str:
    return "".join(block.text for block in message.content if block.type == "text")


def anthropic_sync(client: anthropic.Anthropic) -> None:
    for label, model in (("an-sync-haiku", "claude-haiku-4-5"), ("an-sync-unknown", "shop-llm-1")):
        m = client.messages.create(model=model, max_tokens=200, messages=user(label))
        report(label, "anthropic", model, rid=m.id, usage=anthropic_usage(m.usage), reply=text_of(m))
    system: Any = [{"type": "text", "text": LONG_SYSTEM, "cache_control": {"type": "ephemeral"}}]
    for label in ("an-cache-write", "an-cache-read"):
        m = client.messages.create(
            model="claude-sonnet-4-6", max_tokens=200, system=system, messages=user(label)
        )
        report(
            label,
            "anthropic",
            "claude-sonnet-4-6",
            rid=m.id,
            usage=anthropic_usage(m.usage),
            reply=text_of(m),
        )
    with client.messages.stream(
        model="claude-haiku-4-5", max_tokens=200, messages=user("an-stream")
    ) as stream:
        final = stream.get_final_message()
    report(
        "an-stream",
        "anthropic",
        "claude-haiku-4-5",
        rid=final.id,
        usage=anthropic_usage(final.usage),
        reply=text_of(final),
    )
    events = client.messages.create(
        model="claude-sonnet-4-6", max_tokens=200, messages=user("an-stream-raw"), stream=True
    )
    rid, parts, usage = "", [], {}
    for event in events:
        if event.type == "message_start":
            rid, usage = event.message.id, anthropic_usage(event.message.usage)
        elif event.type == "content_block_delta" and event.delta.type == "text_delta":
            parts.append(event.delta.text)
        elif event.type == "message_delta":
            usage["output"] = event.usage.output_tokens
    report("an-stream-raw", "anthropic", "claude-sonnet-4-6", rid=rid, usage=usage, reply="".join(parts))


async def anthropic_async(client: anthropic.AsyncAnthropic) -> None:
    m = await client.messages.create(model="claude-haiku-4-5", max_tokens=200, messages=user("an-async"))
    report(
        "an-async",
        "anthropic",
        "claude-haiku-4-5",
        rid=m.id,
        usage=anthropic_usage(m.usage),
        reply=text_of(m),
    )
    async with client.messages.stream(
        model="claude-sonnet-4-6", max_tokens=200, messages=user("an-async-stream")
    ) as stream:
        final = await stream.get_final_message()
    report(
        "an-async-stream",
        "anthropic",
        "claude-sonnet-4-6",
        rid=final.id,
        usage=anthropic_usage(final.usage),
        reply=text_of(final),
    )


async def main() -> None:
    openai_sync(openai.OpenAI(base_url=URL + "/v1", api_key=KEY))
    anthropic_sync(anthropic.Anthropic(base_url=URL, api_key=KEY))
    await openai_async(openai.AsyncOpenAI(base_url=URL + "/v1", api_key=KEY))
    await anthropic_async(anthropic.AsyncAnthropic(base_url=URL, api_key=KEY))


if __name__ == "__main__":
    asyncio.run(main())
