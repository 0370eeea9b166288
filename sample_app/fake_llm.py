"""Fake LLM APIs for the stand-in: deterministic replies and usage numbers in the OpenAI and Anthropic wire formats.

Pure functions over parsed request bodies (plus one small prompt cache): no HTTP here, ``standin.py``
routes requests to them. Everything a client sees is derived from the request, so a test can predict it:

- tokens of a text are ``ceil(len(text) / 4)`` (about what real tokenizers give for English);
- OpenAI prompt tokens: per message its content's tokens + 4, plus 3 for the reply's priming;
  Anthropic input tokens: the tokens of the tools (as JSON), the system prompt and every content block,
  + 3 per message, + 5;
- the reply is one to three consecutive canned sentences picked by a CRC of the last user message; its tokens are
  the output tokens; ``max_tokens`` cuts it (``finish_reason`` "length", ``stop_reason`` "max_tokens");
- the requested model is echoed back, whatever it is.

Caching, as the real APIs do it, remembered for five minutes (refreshed on a hit):

- Anthropic: the prompt up to the last block with ``cache_control`` (tools, then system, then messages)
  is the cached prefix, if it is at least 1024 tokens. The first request writes it
  (``cache_creation_input_tokens``), later ones read it (``cache_read_input_tokens``). ``input_tokens``
  counts only the tokens after the prefix, as in the real API.
- OpenAI (automatic, no request flag): when the prompt is at least 1024 tokens and every message but
  the last was seen before, that prefix is reported in ``prompt_tokens_details.cached_tokens``, rounded
  down to a multiple of 128. ``prompt_tokens`` includes the cached tokens, as in the real API.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

CACHE_MIN_TOKENS = 1024
CACHE_TTL_S = 300.0
OPENAI_CACHE_STEP = 128

REPLIES = (
    "The stoneware kettle pairs well with the speckled mug.",
    "Our saucers ship in recycled cardboard within two days.",
    "A teapot of this size pours roughly four generous cups.",
    "Customers who bought the spoon often add a matching saucer.",
    "The glaze is food safe and handles the dishwasher without fading.",
    "Most orders leave the workshop on the next business morning.",
    "For a gift, the pot and two mugs make a tidy little set.",
    "Spare lids are kept in stock for every kettle we sell.",
)


class BadRequest(ValueError):
    """The request body is not what the API accepts; the message says why."""


def count_tokens(text: str) -> int:
    """The stand-in's tokenizer: one token per four characters, rounded up."""
    return (len(text) + 3) // 4


def reply_for(prompt: str, max_tokens: int | None) -> tuple[str, bool]:
    """The deterministic reply to ``prompt``, cut to ``max_tokens``; and whether it was cut."""
    crc = zlib.crc32(prompt.encode())
    first = (crc >> 8) % len(REPLIES)
    text = " ".join(REPLIES[(first + i) % len(REPLIES)] for i in range(1 + crc % 3))
    if max_tokens is not None and count_tokens(text) > max_tokens:
        return text[: max(0, max_tokens) * 4].rstrip(), True
    return text, False


def stream_pieces(text: str) -> list[str]:
    """The reply split into word-sized pieces, the way streamed deltas arrive."""
    return re.findall(r"\S+\s*", text) or [""]


class PromptCache:
    """Prefixes seen recently (by hash), with a time-to-live refreshed on every hit; thread-safe."""

    def __init__(self, ttl_s: float = CACHE_TTL_S) -> None:
        self._ttl_s = ttl_s
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def hit(self, key: str) -> bool:
        """True if ``key`` was seen within the TTL; either way it is (re)remembered from now."""
        now = time.monotonic()
        with self._lock:
            seen = self._seen.get(key)
            self._seen[key] = now
            if len(self._seen) > 10_000:
                self._seen = {k: t for k, t in self._seen.items() if now - t < self._ttl_s}
            return seen is not None and now - seen < self._ttl_s


def _key(parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def _text_of(content: Any) -> str:
    """Text of a message content: a string, or a list of parts/blocks with ``text`` (others as JSON)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(_block_text(block) for block in content)
    return json.dumps(content)


def _block_text(block: Any) -> str:
    if isinstance(block, dict) and isinstance(block.get("text"), str):
        return block["text"]
    if isinstance(block, dict):
        return json.dumps({k: v for k, v in block.items() if k != "cache_control"}, sort_keys=True)
    return str(block)


def _require(body: Any, what: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise BadRequest("model: a model name is required")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
        raise BadRequest(f"messages: {what} needs a non-empty list of message objects")
    return body


def _last_user_text(messages: list[dict[str, Any]]) -> str:
    users = [m for m in messages if m.get("role") == "user"] or messages
    return _text_of(users[-1].get("content"))


# --- OpenAI chat completions --------------------------------------------------------------------------


@dataclass
class OpenAIChat:
    """One chat completion worked out from the request: reply, finish reason, usage, streaming wishes."""

    model: str
    text: str
    finish_reason: str
    usage: dict[str, Any]
    stream: bool
    include_usage: bool
    id: str
    created: int


def openai_chat(body: Any, cache: PromptCache) -> OpenAIChat:
    """Work out the completion for a ``POST /v1/chat/completions`` body; BadRequest if it is malformed."""
    body = _require(body, "a chat completion")
    messages: list[dict[str, Any]] = body["messages"]
    per_message = [count_tokens(_text_of(m.get("content"))) + 4 for m in messages]
    prompt_tokens = sum(per_message) + 3
    cached = 0
    if prompt_tokens >= CACHE_MIN_TOKENS and len(messages) > 1:
        prefix_tokens = sum(per_message[:-1])
        if cache.hit("openai:" + _key([body["model"], messages[:-1]])) and prefix_tokens >= CACHE_MIN_TOKENS:
            cached = prefix_tokens // OPENAI_CACHE_STEP * OPENAI_CACHE_STEP
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    text, cut = reply_for(_last_user_text(messages), limit if isinstance(limit, int) else None)
    completion_tokens = count_tokens(text)
    usage = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }
    options = body.get("stream_options")
    return OpenAIChat(
        model=body["model"],
        text=text,
        finish_reason="length" if cut else "stop",
        usage=usage,
        stream=body.get("stream") is True,
        include_usage=isinstance(options, dict) and options.get("include_usage") is True,
        id="chatcmpl-" + uuid.uuid4().hex[:24],
        created=int(time.time()),
    )


def openai_response(chat: OpenAIChat) -> dict[str, Any]:
    """The non-streaming ``chat.completion`` object."""
    return {
        "id": chat.id,
        "object": "chat.completion",
        "created": chat.created,
        "model": chat.model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": chat.text, "refusal": None, "annotations": []},
                "logprobs": None,
                "finish_reason": chat.finish_reason,
            }
        ],
        "usage": chat.usage,
        "service_tier": "default",
        "system_fingerprint": "fp_standin",
    }


def openai_stream(chat: OpenAIChat) -> Iterator[bytes]:
    """The SSE ``data:`` lines of a streamed completion; a last chunk with usage only if it was asked for."""

    def chunk(delta: dict[str, Any], finish: str | None) -> bytes:
        obj: dict[str, Any] = {
            "id": chat.id,
            "object": "chat.completion.chunk",
            "created": chat.created,
            "model": chat.model,
            "service_tier": "default",
            "system_fingerprint": "fp_standin",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if chat.include_usage:
            obj["usage"] = None
        return _sse(None, obj)

    yield chunk({"role": "assistant", "content": "", "refusal": None}, None)
    for piece in stream_pieces(chat.text):
        yield chunk({"content": piece}, None)
    yield chunk({}, chat.finish_reason)
    if chat.include_usage:
        last = {
            "id": chat.id,
            "object": "chat.completion.chunk",
            "created": chat.created,
            "model": chat.model,
            "service_tier": "default",
            "system_fingerprint": "fp_standin",
            "choices": [],
            "usage": chat.usage,
        }
        yield _sse(None, last)
    yield b"data: [DONE]\n\n"


def openai_error(status: int, message: str) -> dict[str, Any]:
    """OpenAI's error body."""
    kind = {400: "invalid_request_error", 401: "invalid_request_error", 429: "requests"}.get(
        status, "server_error"
    )
    code = {401: "invalid_api_key", 429: "rate_limit_exceeded"}.get(status)
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


# --- Anthropic messages -------------------------------------------------------------------------------


@dataclass
class AnthropicMessage:
    """One message worked out from the request: reply, stop reason, usage, whether to stream."""

    model: str
    text: str
    stop_reason: str
    usage: dict[str, Any]
    stream: bool
    id: str


def _anthropic_pieces(body: dict[str, Any]) -> list[tuple[Any, bool]]:
    """The prompt in cache order (tools, system, messages) as (part, has cache_control) pairs."""
    pieces: list[tuple[Any, bool]] = []
    for tool in body.get("tools") or []:
        pieces.append((tool, isinstance(tool, dict) and "cache_control" in tool))
    system = body.get("system")
    blocks = [system] if isinstance(system, str) else system if isinstance(system, list) else []
    for block in blocks:
        pieces.append((block, isinstance(block, dict) and "cache_control" in block))
    for message in body["messages"]:
        content = message.get("content")
        for block in [content] if isinstance(content, str) else content if isinstance(content, list) else []:
            pieces.append((block, isinstance(block, dict) and "cache_control" in block))
    return pieces


def _piece_tokens(piece: Any) -> int:
    if isinstance(piece, dict) and "text" not in piece:  # a tool definition or a non-text block
        return count_tokens(
            json.dumps({k: v for k, v in piece.items() if k != "cache_control"}, sort_keys=True)
        )
    return count_tokens(_block_text(piece))


def anthropic_message(body: Any, cache: PromptCache) -> AnthropicMessage:
    """Work out the message for a ``POST /v1/messages`` body; BadRequest if it is malformed."""
    body = _require(body, "a message")
    max_tokens = body.get("max_tokens")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        raise BadRequest("max_tokens: Field required")
    pieces = _anthropic_pieces(body)
    tokens = [_piece_tokens(piece) for piece, _ in pieces]
    total = sum(tokens) + 3 * len(body["messages"]) + 5
    marks = [i for i, (_, marked) in enumerate(pieces) if marked]
    cache_write = cache_read = 0
    if marks and sum(tokens[: marks[-1] + 1]) >= CACHE_MIN_TOKENS:
        prefix = sum(tokens[: marks[-1] + 1])
        key = "anthropic:" + _key([body["model"], [piece for piece, _ in pieces[: marks[-1] + 1]]])
        if cache.hit(key):
            cache_read = prefix
        else:
            cache_write = prefix
    text, cut = reply_for(_last_user_text(body["messages"]), max_tokens)
    usage = {
        "input_tokens": total - cache_write - cache_read,
        "cache_creation_input_tokens": cache_write,
        "cache_read_input_tokens": cache_read,
        "cache_creation": {"ephemeral_5m_input_tokens": cache_write, "ephemeral_1h_input_tokens": 0},
        "output_tokens": count_tokens(text),
        "service_tier": "standard",
    }
    return AnthropicMessage(
        model=body["model"],
        text=text,
        stop_reason="max_tokens" if cut else "end_turn",
        usage=usage,
        stream=body.get("stream") is True,
        id="msg_" + uuid.uuid4().hex[:24],
    )


def anthropic_response(msg: AnthropicMessage) -> dict[str, Any]:
    """The non-streaming ``message`` object."""
    return {
        "id": msg.id,
        "type": "message",
        "role": "assistant",
        "model": msg.model,
        "content": [{"type": "text", "text": msg.text}],
        "stop_reason": msg.stop_reason,
        "stop_sequence": None,
        "usage": msg.usage,
    }


def anthropic_stream(msg: AnthropicMessage) -> Iterator[bytes]:
    """The SSE events of a streamed message: input and cache tokens in message_start, output in message_delta."""
    start = {**anthropic_response(msg), "content": [], "stop_reason": None}
    start["usage"] = {**msg.usage, "output_tokens": 1}
    yield _sse("message_start", {"type": "message_start", "message": start})
    yield _sse(
        "content_block_start",
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    )
    yield _sse("ping", {"type": "ping"})
    for piece in stream_pieces(msg.text):
        delta = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}}
        yield _sse("content_block_delta", delta)
    yield _sse("content_block_stop", {"type": "content_block_stop", "index": 0})
    end = {
        "type": "message_delta",
        "delta": {"stop_reason": msg.stop_reason, "stop_sequence": None},
        "usage": {"output_tokens": msg.usage["output_tokens"]},
    }
    yield _sse("message_delta", end)
    yield _sse("message_stop", {"type": "message_stop"})


def anthropic_error(status: int, message: str) -> dict[str, Any]:
    """Anthropic's error body."""
    kind = {
        400: "invalid_request_error",
        401: "authentication_error",
        429: "rate_limit_error",
        529: "overloaded_error",
    }
    return {"type": "error", "error": {"type": kind.get(status, "api_error"), "message": message}}


def _sse(event: str | None, data: Any) -> bytes:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data, separators=(',', ':'))}\n\n".encode()
