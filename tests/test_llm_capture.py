"""LLM calls captured in the app: the real openai and anthropic SDKs, under `obsdash wrap`, against the stand-in.

`tests/apps/llm_calls.py` makes 17 calls — sync, async, streamed with and without usage, both SDKs, two models known
to genai-prices per provider and one unknown (`shop-llm-1`), prompt-cache writes and reads — and prints what the SDK
parsed from each response. The store must hold one GenAI instrumentor span per call, matched by response id, with
provider, model and tokens equal to that; a stream without usage has no token numbers. With message capture off (the
default) no prompt or reply text may reach the disk; with `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true`
it does, scrubbed and cut to 4 KiB (tests/security/test_secrets.py).
"""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from obsdash.wrap import genai_capture_mode
from sample_app.standin import serve_in_thread
from tests.conftest import APPS, assert_no_internal_errors, child_env, query, run, scalar, wrapped

CAPTURE = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
INSTRUMENTOR_SPANS = "scope LIKE 'opentelemetry.instrumentation.genai.%'"
SDK_SPANS = "scope = 'com.anthropic.sdk.python'"
SPAN_COLUMNS = """
    span_id, parent_span_id, name, scope, gen_ai_provider, gen_ai_model, gen_ai_operation, input_tokens,
    output_tokens, cache_read_tokens,
    cache_write_tokens,
    attributes->>'$."gen_ai.response.id"' AS response_id
"""


@dataclass
class Run:
    """One wrapped run of llm_calls.py: its data directory, marker nonce and the calls it reported."""

    data_dir: Path
    nonce: str
    calls: list[dict[str, Any]]


@pytest.fixture(scope="module")
def standin() -> Iterator[str]:
    server, url = serve_in_thread(seed=1)
    yield url
    server.close()


def run_llm_app(data_dir: Path, standin: str, **env: str) -> Run:
    nonce = uuid.uuid4().hex[:12]
    command = wrapped(data_dir, sys.executable, str(APPS / "llm_calls.py"), standin, nonce, service="llm-app")
    result = run(command, timeout=120, env=child_env(**env))
    assert result.returncode == 0, result.stderr
    assert_no_internal_errors(result.stderr)
    calls = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(calls) == 17, result.stdout
    return Run(data_dir, nonce, calls)


@pytest.fixture(scope="module")
def default_run(tmp_path_factory: pytest.TempPathFactory, standin: str) -> Run:
    """The app run with the user's environment saying nothing about message capture."""
    return run_llm_app(tmp_path_factory.mktemp("llm") / "data", standin)


def spans_by_response_id(data_dir: Path, where: str) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for row in query(data_dir, f"SELECT {SPAN_COLUMNS} FROM spans WHERE {where}"):
        found.setdefault(row["response_id"], []).append(row)
    return found


def tokens(row: dict[str, Any]) -> dict[str, int | None]:
    """A span's token columns; a cache count of 0 as None (the instrumentors leave zero cache counts out)."""
    return {
        "input": row["input_tokens"],
        "output": row["output_tokens"],
        "cache_read": row["cache_read_tokens"] or None,
        "cache_write": row["cache_write_tokens"] or None,
    }


def reported(usage: dict[str, int]) -> dict[str, int | None]:
    """What the SDK parsed, in the same shape."""
    return {**usage, "cache_read": usage["cache_read"] or None, "cache_write": usage["cache_write"] or None}


def test_one_instrumentor_span_per_call_with_the_reported_model_and_tokens(default_run: Run) -> None:
    spans = spans_by_response_id(default_run.data_dir, INSTRUMENTOR_SPANS)
    assert set(spans) == {call["response_id"] for call in default_run.calls}
    for call in default_run.calls:
        (span,) = spans[call["response_id"]]
        assert span["gen_ai_provider"] == call["provider"], call["label"]
        assert span["gen_ai_model"] == call["model"], call["label"]
        assert span["gen_ai_operation"] == "chat"
        assert span["name"] == f"chat {call['model']}"
        assert span["scope"] == f"opentelemetry.instrumentation.genai.{call['provider']}"
        if call["usage"] is None:  # streamed without include_usage: nothing to count, nothing guessed
            assert tokens(span) == {"input": None, "output": None, "cache_read": None, "cache_write": None}
        else:
            assert tokens(span) == reported(call["usage"]), call["label"]


def test_the_calls_cover_what_the_issue_asks_for(default_run: Run) -> None:
    by_label = {call["label"]: call for call in default_run.calls}
    assert {c["model"] for c in default_run.calls if c["provider"] == "openai"} == {
        "gpt-4o-mini",
        "gpt-4.1",
        "shop-llm-1",
    }
    assert {c["model"] for c in default_run.calls if c["provider"] == "anthropic"} == {
        "claude-haiku-4-5",
        "claude-sonnet-4-6",
        "shop-llm-1",
    }
    assert by_label["oa-stream-nousage"]["usage"] is None
    assert by_label["oa-cache-2"]["usage"]["cache_read"] > 1024
    assert by_label["an-cache-write"]["usage"]["cache_write"] > 1024
    assert (
        by_label["an-cache-read"]["usage"]["cache_read"] == by_label["an-cache-write"]["usage"]["cache_write"]
    )


def test_the_anthropic_sdks_own_span_repeats_the_call_under_the_instrumentors(default_run: Run) -> None:
    """The anthropic SDK (2.13 here) emits `anthropic.messages.create` itself, with the same usage: two spans, one call."""
    ours = spans_by_response_id(default_run.data_dir, INSTRUMENTOR_SPANS)
    theirs = spans_by_response_id(default_run.data_dir, SDK_SPANS)
    anthropic_calls = [call for call in default_run.calls if call["provider"] == "anthropic"]
    if not theirs:
        pytest.skip("this anthropic SDK emits no spans of its own")
    assert set(theirs) == {call["response_id"] for call in anthropic_calls}
    for call in anthropic_calls:
        (sdk_span,) = theirs[call["response_id"]]
        (instrumentor_span,) = ours[call["response_id"]]
        assert sdk_span["name"] == "anthropic.messages.create"
        assert sdk_span["parent_span_id"] == instrumentor_span["span_id"]
        assert (sdk_span["gen_ai_provider"], sdk_span["gen_ai_model"]) == ("anthropic", call["model"])
        assert tokens(sdk_span) == reported(call["usage"]), call["label"]


def test_gen_ai_metrics_and_the_instrumentation_status_are_recorded(default_run: Run) -> None:
    metrics = {row["name"] for row in query(default_run.data_dir, "SELECT DISTINCT name FROM metric_points")}
    assert {"gen_ai.client.operation.duration", "gen_ai.client.token.usage"} <= metrics
    status = json.loads(
        scalar(default_run.data_dir, "SELECT details->'instrumentation' FROM run_events WHERE event = 'end'")
    )
    assert status["openai"] == status["anthropic"] == "instrumented"


def _texts(run_: Run) -> list[str]:
    markers = [f"PROMPT-MARKER-{call['label']}-{run_.nonce}" for call in run_.calls]
    return markers + sorted({call["reply"] for call in run_.calls if call["reply"]})


def _on_disk(data_dir: Path, text: str) -> list[str]:
    """The files of the data directory (spool, ingested segments, database, WAL) whose bytes hold `text`."""
    return [
        str(path.relative_to(data_dir))
        for path in sorted(data_dir.rglob("*"))
        if path.is_file() and text.encode() in path.read_bytes()
    ]


def _in_store(data_dir: Path, texts: list[str]) -> dict[str, int]:
    """How many stored spans, span events and log records hold each text (one query for all of them)."""
    values = ", ".join("('{}')".format(text.replace("'", "''")) for text in texts)
    rows = query(
        data_dir,
        f"""WITH texts(text) AS (VALUES {values}),
                 records(blob) AS (SELECT attributes::VARCHAR FROM spans
                                   UNION ALL SELECT attributes::VARCHAR FROM span_events
                                   UNION ALL SELECT coalesce(body, '') || attributes::VARCHAR FROM logs)
            SELECT text, count(blob) AS n FROM texts LEFT JOIN records ON contains(blob, text) GROUP BY text""",
    )
    return {row["text"]: row["n"] for row in rows}


def test_without_capture_no_prompt_or_reply_text_reaches_the_disk(default_run: Run) -> None:
    data_dir = default_run.data_dir
    assert scalar(data_dir, "SELECT count(*) FROM spans") > 0  # ingested, so the store is on disk too
    assert list((data_dir / "spool" / "ingested").glob("spans-*.jsonl"))
    texts = _texts(default_run)
    assert _in_store(data_dir, texts) == dict.fromkeys(texts, 0)
    for text in texts:
        assert _on_disk(data_dir, text) == [], text


def test_with_capture_true_the_prompt_and_reply_are_recorded(tmp_path: Path, standin: str) -> None:
    """The positive control of the test above; no secret in it, so the text is stored as sent (long prompts cut to
    4 KiB, keeping both ends, where the markers are)."""
    captured = run_llm_app(tmp_path / "data", standin, **{CAPTURE: "true"})
    texts = _texts(captured)
    stored = _in_store(captured.data_dir, texts)
    for text in texts:
        assert stored[text] > 0, text
        assert any(name.startswith("spool/ingested/spans-") for name in _on_disk(captured.data_dir, text)), (
            text
        )
    attributes = scalar(
        captured.data_dir,
        f"SELECT attributes FROM spans WHERE {INSTRUMENTOR_SPANS} AND name = 'chat gpt-4o-mini' LIMIT 1",
    )
    assert {"gen_ai.input.messages", "gen_ai.output.messages"} <= set(json.loads(attributes))


def test_disabled_genai_instrumentors_are_skipped(tmp_path: Path, standin: str) -> None:
    disabled = run_llm_app(
        tmp_path / "data", standin, OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="openai,anthropic"
    )
    status = json.loads(
        scalar(disabled.data_dir, "SELECT details->'instrumentation' FROM run_events WHERE event = 'end'")
    )
    assert status["openai"] == status["anthropic"] == "skipped: OTEL_PYTHON_DISABLED_INSTRUMENTATIONS"
    assert scalar(disabled.data_dir, f"SELECT count(*) FROM spans WHERE {INSTRUMENTOR_SPANS}") == 0


@pytest.mark.parametrize(
    ("given", "mode"),
    [
        (None, "NO_CONTENT"),
        ("", "NO_CONTENT"),
        ("false", "NO_CONTENT"),
        ("TRUE", "SPAN_ONLY"),
        ("true", "SPAN_ONLY"),
        ("1", "SPAN_ONLY"),
        ("event_only", "event_only"),
        ("SPAN_AND_EVENT", "SPAN_AND_EVENT"),
    ],
)
def test_wrap_translates_the_capture_setting_for_util_genai(given: str | None, mode: str) -> None:
    assert genai_capture_mode(given) == mode


def test_the_wrapped_app_sees_the_safe_default(data_dir: Path) -> None:
    env = {k: v for k, v in child_env().items() if k != CAPTURE}
    program = f"import os; print(os.environ['{CAPTURE}'])"
    result = run(wrapped(data_dir, sys.executable, "-c", program), env=env)
    assert (result.returncode, result.stdout) == (0, "NO_CONTENT\n"), result.stderr
