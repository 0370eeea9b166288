"""The shop's LLM features: a shopping assistant on the OpenAI API and item write-ups on the Anthropic API.

Written like ordinary app code that knows nothing of obsdash. Routes (a Flask blueprint, registered by
``sample_app.app``):

- ``POST /assistant`` ``{"question": str, "detailed": bool}`` — one chat completion, not streamed;
  ``ASSISTANT_MODEL`` (gpt-4o-mini), or ``ASSISTANT_MODEL_DETAILED`` (gpt-4.1) when ``detailed``.
- ``GET /assistant/stream?q=`` — the same answer streamed, asking for usage
  (``stream_options={"include_usage": True}``).
- ``GET /suggest?q=`` — search suggestions from the shop's self-hosted, OpenAI-compatible model
  ``SUGGEST_MODEL`` (shop-llm-1), streamed *without* asking for usage, so no token counts exist for it.
- ``GET /items/<id>/summary`` — a short summary of an item by ``SUMMARY_MODEL`` (claude-haiku-4-5), not
  streamed. The long system prompt (the catalogue and house style) is marked ``cache_control``, so
  repeated calls read it from the prompt cache.
- ``GET /items/<id>/pitch`` — a sales pitch by ``PITCH_MODEL`` (claude-sonnet-4-6), streamed with
  ``messages.stream``, with the same cached system prompt.

Both APIs are reached at ``LLM_URL`` (the OpenAI one under ``/v1``) with ``LLM_API_KEY``; the app never
reads ``OPENAI_API_KEY``/``ANTHROPIC_API_KEY``, so the demo cannot send a real key anywhere. Each setting
comes from the app config, which ``sample_app.app`` fills from ``SAMPLE_<NAME>`` variables and flags. An
API failure (after the SDK's own retries) answers 502.
"""

from __future__ import annotations

import functools
import logging
import sqlite3
from typing import Any

import anthropic
import openai
from flask import Blueprint, current_app, request
from flask.typing import ResponseReturnValue

log = logging.getLogger("sample_app.assistant")

bp = Blueprint("assistant", __name__)

DEFAULTS = {
    "LLM_API_KEY": "standin-dummy-key",
    "ASSISTANT_MODEL": "gpt-4o-mini",
    "ASSISTANT_MODEL_DETAILED": "gpt-4.1",
    "SUGGEST_MODEL": "shop-llm-1",
    "SUMMARY_MODEL": "claude-haiku-4-5",
    "PITCH_MODEL": "claude-sonnet-4-6",
}
LLM_TIMEOUT_S = 10.0

# Long enough (over 1024 tokens) for the providers' prompt caches to apply.
HOUSE_STYLE = (
    "You write for a small ceramics shop. Be warm and brief, never pushy, and only mention items that are in "
    "the catalogue below. Prices are in euros. Everything is handmade, so small differences in glaze are normal "
    "and worth mentioning as a feature. "
)
ITEMS = (("pot", 24.5), ("mug", 8.0), ("kettle", 39.9), ("saucer", 4.25), ("spoon", 2.1))
GLAZES = ("celadon", "tenmoku", "shino", "ash", "speckled white", "cobalt", "iron red", "matte black")
SIZES = (("small", 1.0), ("large", 1.4))
CATALOGUE = "\n".join(
    f"- {size} {name} in {glaze} glaze: stoneware, batch {(i * 7 + j * 3) % 31}, {price * factor:.2f} EUR."
    for i, (name, price) in enumerate(ITEMS)
    for j, glaze in enumerate(GLAZES)
    for size, factor in SIZES
)
SYSTEM_PROMPT = f"{HOUSE_STYLE}\nCatalogue:\n{CATALOGUE}\n"


class LLMUnavailable(Exception):
    """The LLM API failed after the SDK's retries."""


@functools.lru_cache(maxsize=4)
def _openai(base_url: str, api_key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url + "/v1", api_key=api_key, timeout=LLM_TIMEOUT_S, max_retries=2)


@functools.lru_cache(maxsize=4)
def _anthropic(base_url: str, api_key: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=base_url, api_key=api_key, timeout=LLM_TIMEOUT_S, max_retries=2)


def openai_client() -> openai.OpenAI:
    """The OpenAI client for the configured URL and key (one per process, shared by threads)."""
    return _openai(current_app.config["LLM_URL"], current_app.config["LLM_API_KEY"])


def anthropic_client() -> anthropic.Anthropic:
    """The Anthropic client for the configured URL and key (one per process, shared by threads)."""
    return _anthropic(current_app.config["LLM_URL"], current_app.config["LLM_API_KEY"])


def _chat_messages(question: str) -> list[Any]:
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": question}]


def _cached_system() -> list[Any]:
    return [{"type": "text", "text": SYSTEM_PROMPT, "cache_control": {"type": "ephemeral"}}]


def _item_name(item_id: int) -> str | None:
    conn = sqlite3.connect(current_app.config["DB_PATH"], timeout=10)
    try:
        row = conn.execute("SELECT name FROM items WHERE id = ?", (item_id,)).fetchone()
    finally:
        conn.close()
    return str(row[0]) if row else None


@bp.errorhandler(LLMUnavailable)
@bp.errorhandler(openai.APIError)
@bp.errorhandler(anthropic.APIError)
def _llm_failed(exc: Exception) -> ResponseReturnValue:
    log.warning("LLM API failed: %s", exc)
    return {"error": "the assistant is unavailable"}, 502


@bp.post("/assistant")
def ask() -> ResponseReturnValue:
    """Answer a shopping question with one (non-streamed) chat completion."""
    data = request.get_json(silent=True) or {}
    question = data.get("question")
    if not isinstance(question, str) or not question.strip():
        return {"error": 'expected a JSON body like {"question": "which mug for tea?"}'}, 400
    model = current_app.config["ASSISTANT_MODEL_DETAILED" if data.get("detailed") else "ASSISTANT_MODEL"]
    completion = openai_client().chat.completions.create(
        model=model, messages=_chat_messages(question), max_tokens=300
    )
    return {"model": completion.model, "answer": completion.choices[0].message.content}


@bp.get("/assistant/stream")
def ask_streamed() -> ResponseReturnValue:
    """The assistant's answer, streamed from the API with usage requested (collected here, returned whole)."""
    question = request.args.get("q", "").strip()
    if not question:
        return {"error": "missing ?q="}, 400
    stream = openai_client().chat.completions.create(
        model=current_app.config["ASSISTANT_MODEL"],
        messages=_chat_messages(question),
        max_tokens=300,
        stream=True,
        stream_options={"include_usage": True},
    )
    parts = [chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices]
    return {"answer": "".join(parts)}


@bp.get("/suggest")
def suggest() -> ResponseReturnValue:
    """Search suggestions from the self-hosted model, streamed without usage (nobody asked for it)."""
    prefix = request.args.get("q", "").strip()
    if not prefix:
        return {"error": "missing ?q="}, 400
    stream = openai_client().chat.completions.create(
        model=current_app.config["SUGGEST_MODEL"],
        messages=[{"role": "user", "content": f"Suggest shop searches starting with: {prefix}"}],
        max_tokens=40,
        stream=True,
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    return {"suggestions": [s.strip() for s in text.split(".") if s.strip()]}


@bp.get("/items/<int:item_id>/summary")
def item_summary(item_id: int) -> ResponseReturnValue:
    """A two-sentence summary of an item (Anthropic, not streamed, cached system prompt)."""
    name = _item_name(item_id)
    if name is None:
        return {"error": f"no item {item_id}"}, 404
    message = anthropic_client().messages.create(
        model=current_app.config["SUMMARY_MODEL"],
        max_tokens=200,
        system=_cached_system(),
        messages=[{"role": "user", "content": f"Summarise the {name} (item {item_id}) in two sentences."}],
    )
    text = "".join(block.text for block in message.content if block.type == "text")
    return {"item": item_id, "summary": text}


@bp.get("/items/<int:item_id>/pitch")
def item_pitch(item_id: int) -> ResponseReturnValue:
    """A short sales pitch for an item, streamed from the Anthropic API (collected here, returned whole)."""
    name = _item_name(item_id)
    if name is None:
        return {"error": f"no item {item_id}"}, 404
    with anthropic_client().messages.stream(
        model=current_app.config["PITCH_MODEL"],
        max_tokens=300,
        system=_cached_system(),
        messages=[{"role": "user", "content": f"Write a short pitch for the {name} (item {item_id})."}],
    ) as stream:
        text = "".join(stream.text_stream)
    return {"item": item_id, "pitch": text}
