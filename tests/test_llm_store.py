"""The `llm_calls` view, its pricing and the LLM spend queries, over real spool segments ingested by the real hub.

The calls cover what the view must get right: the anthropic SDK's span nested under the instrumentor's with the
same usage (one call, not two), a stream that reported no usage, two models known to genai-prices per provider
and one unknown, Anthropic's raw `input_tokens` (without cached tokens) from an older instrumentation, a call past
a tiered price's threshold, an agent span carrying its calls' usage, a token-count request, and a script whose
LLM call is the root span. Every expected cost is computed here with genai-prices' own `calc_price`.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from genai_prices import Usage, calc_price

from obsdash.datadir import DataDir
from obsdash.hub.client import Store, open_store
from obsdash.store import pricing
from obsdash.store.queries.llm import EMPTY, MIN_TRAFFIC_S, burn_rate, llm_spend, spend_summary
from obsdash.store.queries.window import window_named
from tests import genai
from tests.tui.store import hex_id, write_segment

NOW = datetime(2026, 11, 24, 12, 0, 0)
NOW_NS = int((NOW - datetime(1970, 1, 1)).total_seconds()) * 1_000_000_000
S = 1_000_000_000
MS = 1_000_000


@dataclass(frozen=True)
class Call:
    """One real LLM call of the scenario and what the store must say about it."""

    n: int
    provider: str
    model: str
    """As the span reports it (the response model when there is one)."""
    input_tokens: int | None
    """Including cached tokens, as genai-prices counts them."""
    output_tokens: int | None
    seconds_ago: int
    route: str | None = "/ask"
    service: str = "assistant"
    cache_read: int | None = None
    cache_write: int | None = None
    stream: bool = False
    request_model: str | None = None
    layout: str = "instrumentor"
    """instrumentor | nested (+ the anthropic SDK's span) | legacy (old attribute names, Anthropic's raw input
    count) | agent (under an invoke_agent span with the same usage) | root (the call is the trace's root)"""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def trace_id(self) -> str:
        return hex_id(f"llm-trace-{self.n}", 32)

    def span_id(self, name: str) -> str:
        return hex_id(f"llm-span-{self.n}-{name}", 16)

    @property
    def call_span_id(self) -> str:
        """The span the view keeps for this call: the outermost model-call span."""
        return self.span_id("call")

    def expected_cost(self) -> float | None:
        if self.input_tokens is None and self.output_tokens is None:
            return None
        try:
            price = calc_price(
                Usage(
                    input_tokens=self.input_tokens,
                    output_tokens=self.output_tokens,
                    cache_read_tokens=self.cache_read,
                    cache_write_tokens=self.cache_write,
                ),
                model_ref=self.model,
                provider_id=self.provider,
            )
        except LookupError:
            return None
        return float(price.total_price)


CALLS = [
    Call(1, "openai", "gpt-4o-2024-08-06", 1200, 80, 3000, cache_read=1024, request_model="gpt-4o"),
    Call(2, "openai", "gpt-4o-mini", 900, 150, 2400, stream=True),
    Call(3, "openai", "gpt-4o-mini", None, None, 1800, stream=True),  # stream without include_usage
    Call(
        4,
        "anthropic",
        "claude-sonnet-4-20250514",
        2800,
        90,
        1500,
        "/summarize",
        cache_read=2000,
        cache_write=500,
        layout="nested",
    ),
    Call(
        5, "anthropic", "claude-3-5-haiku-20241022", 400, 60, 1200, "/summarize", stream=True, layout="nested"
    ),
    Call(6, "openai", "acme-large-2", 500, 50, 900),  # an OpenAI-compatible endpoint's own model
    Call(
        7,
        "anthropic",
        "claude-3-5-haiku-20241022",
        2300,
        40,
        600,
        "nightly_digest",
        cache_read=2000,
        layout="legacy",
    ),
    Call(8, "anthropic", "claude-sonnet-4-5", 250_000, 1000, 300, "/summarize"),  # past the 200k tier
    Call(9, "openai", "gpt-4o", 100, 10, 200, layout="agent"),
    Call(10, "openai", "gpt-4o-mini", 10, 5, 100, None, "batch", layout="root"),
]
KNOWN_MODELS = {
    "gpt-4o-2024-08-06",
    "gpt-4o",
    "gpt-4o-mini",
    "claude-sonnet-4-20250514",
    "claude-3-5-haiku-20241022",
    "claude-sonnet-4-5",
}


def _span(
    call: Call,
    name: str,
    display: str,
    *,
    parent: str | None,
    attributes: dict[str, Any],
    kind: str,
    scope: str,
    offset_ms: float = 0,
    ms: float = 800,
) -> dict[str, Any]:
    start = NOW_NS - call.seconds_ago * S + int(offset_ms * MS)
    return {
        "trace_id": call.trace_id,
        "span_id": call.span_id(name),
        "parent_span_id": call.span_id(parent) if parent else None,
        "parent_remote": False if parent else None,
        "name": display,
        "kind": kind,
        "start_ns": start,
        "end_ns": start + int(ms * MS),
        "status_code": "UNSET",
        "status_message": None,
        "attributes": attributes,
        "events": [],
        "scope": scope,
        "service_name": call.service,
        "run_id": "llm-run",
        "pid": 7,
        "resource": {"service.name": call.service},
    }


def call_spans(call: Call) -> list[dict[str, Any]]:
    """The spans one call leaves, as the instrumentations write them."""
    spans = []
    parent: str | None = "root"
    if call.layout != "root":
        route = call.route or "?"
        if route.startswith("/"):
            attrs = {"http.route": route, "http.request.method": "POST", "http.response.status_code": 200}
            spans.append(
                _span(
                    call,
                    "root",
                    f"POST {route}",
                    parent=None,
                    attributes=attrs,
                    kind="SERVER",
                    scope="opentelemetry.instrumentation.flask",
                    ms=2000,
                )
            )
        else:
            spans.append(
                _span(call, "root", route, parent=None, attributes={}, kind="INTERNAL", scope="app", ms=2000)
            )
    else:
        parent = None
    tokens = genai.usage(call.input_tokens, call.output_tokens, call.cache_read, call.cache_write)
    request_model = call.request_model or call.model
    if call.layout == "agent":
        agent = {
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.name": "helper",
            "gen_ai.request.model": request_model,
            **tokens,
        }
        spans.append(
            _span(
                call,
                "agent",
                "invoke_agent helper",
                parent=parent,
                attributes=agent,
                kind="INTERNAL",
                scope="app.agents",
                offset_ms=5,
                ms=1500,
            )
        )
        parent = "agent"
    if call.layout == "legacy":
        # an older instrumentation: old attribute names, Anthropic's own input count (cached tokens left out)
        attrs = {
            "gen_ai.system": call.provider,
            "gen_ai.request.model": call.model,
            "gen_ai.usage.prompt_tokens": (call.input_tokens or 0) - (call.cache_read or 0),
            "gen_ai.usage.completion_tokens": call.output_tokens,
            "gen_ai.usage.cache_read_input_tokens": call.cache_read,
        }
        spans.append(
            _span(
                call,
                "call",
                "anthropic.chat",
                parent=parent,
                attributes=attrs,
                kind="CLIENT",
                scope="opentelemetry.instrumentation.anthropic",
                offset_ms=10,
            )
        )
        return spans
    attrs = genai.instrumentor(
        call.provider, request_model, tokens, response_model=call.model, stream=call.stream
    )
    spans.append(
        _span(
            call,
            "call",
            f"chat {request_model}",
            parent=parent,
            attributes=attrs,
            kind="CLIENT",
            scope=genai.INSTRUMENTOR_SCOPES[call.provider],
            offset_ms=10,
        )
    )
    if call.layout == "nested":
        sdk = genai.anthropic_sdk(call.model, tokens, stream=call.stream)
        spans.append(
            _span(
                call,
                "sdk",
                "anthropic.messages.create",
                parent="call",
                attributes=sdk,
                kind="CLIENT",
                scope=genai.ANTHROPIC_SDK_SCOPE,
                offset_ms=12,
                ms=780,
            )
        )
    if call.n == 9:  # a token count next to it: a request about a model, not a model call
        count = {
            "gen_ai.request.model": call.model,
            "gen_ai.provider.name": call.provider,
            "anthropic.message.count_tokens.input_tokens": 99,
        }
        spans.append(
            _span(
                call,
                "count",
                "anthropic.messages.count_tokens",
                parent=parent,
                attributes=count,
                kind="CLIENT",
                scope=genai.ANTHROPIC_SDK_SCOPE,
                offset_ms=1,
                ms=3,
            )
        )
    return spans


def write_calls(spool: Path, calls: list[Call], seq: int) -> None:
    write_segment(spool, "spans", [span for call in calls for span in call_spans(call)], seq)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    data_dir = DataDir(tmp_path / "data")
    write_calls(data_dir.spool, CALLS, 1)
    opened = open_store(data_dir)
    opened.sync()
    yield opened
    opened.close()


def llm_rows(store: Store, where: str = "true") -> dict[str, dict[str, Any]]:
    rows = store.query(f"SELECT * FROM llm_calls WHERE {where}").records()
    return {row["trace_id"]: row for row in rows}


def test_one_row_per_call(store: Store) -> None:
    rows = store.query("SELECT trace_id, span_id, spans FROM llm_calls").records()
    assert sorted((r["trace_id"], r["span_id"]) for r in rows) == sorted(
        (c.trace_id, c.call_span_id) for c in CALLS
    )
    folded = {r["trace_id"]: r["spans"] for r in rows}
    nested = [c for c in CALLS if c.layout == "nested"]
    assert nested and all(folded[c.trace_id] == 2 for c in nested)  # the SDK's span, folded into the call
    spans_with_usage = store.query("SELECT count(*) FROM spans WHERE input_tokens IS NOT NULL").rows[0][0]
    assert spans_with_usage == len([c for c in CALLS if c.input_tokens]) + 3  # 2 SDK spans + 1 agent span


def test_tokens_model_route_and_flags(store: Store) -> None:
    rows = llm_rows(store)
    for call in CALLS:
        row = rows[call.trace_id]
        assert (row["provider"], row["model"]) == (call.provider, call.model), call
        assert (row["input_tokens"], row["output_tokens"]) == (call.input_tokens, call.output_tokens), call
        assert (
            row["cache_read_tokens"] == call.cache_read and row["cache_write_tokens"] == call.cache_write
        ), call
        assert row["route"] == call.route and row["service_name"] == call.service, call
        assert row["streamed"] is call.stream, call
        assert row["usage_reported"] is (call.input_tokens is not None), call
        assert row["priced"] is (call.model in KNOWN_MODELS), call
        assert row["time"] == NOW - timedelta(seconds=call.seconds_ago) + timedelta(milliseconds=10), call


def test_per_model_token_sums(store: Store) -> None:
    expected: dict[str, list[int]] = {}
    for call in CALLS:
        sums = expected.setdefault(call.model, [0, 0, 0])
        sums[0] += call.input_tokens or 0
        sums[1] += call.output_tokens or 0
        sums[2] += 1
    rows = store.query(
        "SELECT model, sum(input_tokens), sum(output_tokens), count(*) FROM llm_calls GROUP BY model"
    ).rows
    assert {model: [int(i or 0), int(o or 0), int(n)] for model, i, o, n in rows} == expected


def test_cost_equals_genai_prices_per_call(store: Store) -> None:
    rows = llm_rows(store)
    priced = 0
    for call in CALLS:
        expected = call.expected_cost()
        cost = rows[call.trace_id]["cost_usd"]
        if expected is None:
            assert cost is None, call  # unknown model or no usage: never $0
        else:
            assert cost == pytest.approx(expected, rel=1e-9, abs=1e-15), call
            priced += 1
    assert priced == 8
    # the tier: all of call 8's tokens at the long-context rate, not just those past 200k
    tiered = rows[CALLS[7].trace_id]["cost_usd"]
    base = store.query(
        "SELECT input_per_mtok, output_per_mtok FROM llm_prices WHERE model = 'claude-sonnet-4-5' "
        "ORDER BY min_input_tokens"
    ).rows
    assert len(base) == 2 and base[1][0] > base[0][0]
    assert tiered > (250_000 * base[0][0] + 1000 * base[0][1]) / 1e6


def test_unknown_model_and_no_usage_are_not_zero(store: Store) -> None:
    rows = llm_rows(store)
    unknown = rows[CALLS[5].trace_id]
    assert unknown["cost_usd"] is None and not unknown["priced"] and unknown["usage_reported"]
    note = store.query("SELECT note FROM llm_prices WHERE model = 'acme-large-2'").rows
    assert note and "unknown to genai-prices" in note[0][0]
    silent = rows[CALLS[2].trace_id]
    assert silent["cost_usd"] is None and silent["input_tokens"] is None and not silent["usage_reported"]
    assert silent["streamed"] and silent["priced"]  # the model has a price; the call told us nothing to price


def test_cache_savings(store: Store) -> None:
    call = CALLS[3]  # claude-sonnet-4: 2000 tokens read from the cache, 500 written to it
    prices = store.query(
        "SELECT input_per_mtok, cache_read_per_mtok, cache_write_per_mtok FROM llm_prices "
        "WHERE model = 'claude-sonnet-4-20250514'"
    ).rows[0]
    saved = llm_rows(store)[call.trace_id]["cache_savings_usd"]
    assert saved == pytest.approx((2000 * (prices[0] - prices[1]) + 500 * (prices[0] - prices[2])) / 1e6)
    assert prices[1] < prices[0] < prices[2]


def test_spend_queries_and_burn_rate(store: Store) -> None:
    spend = llm_spend(store, window_named("1h"), NOW)
    costs = [c.expected_cost() for c in CALLS]
    total = sum(c for c in costs if c is not None)
    assert spend.calls == len(CALLS)
    assert spend.totals.cost_usd == pytest.approx(total)
    assert (spend.totals.unpriced, spend.totals.no_usage) == (1, 1)
    assert spend.totals.input_tokens == sum(c.input_tokens or 0 for c in CALLS)
    assert spend.totals.cache_read_tokens == sum(c.cache_read or 0 for c in CALLS)
    # burn rate: the window's spend over the time since its first call (3000 s ago), projected
    assert max(c.seconds_ago for c in CALLS) == 3000
    assert spend.burn.seconds == pytest.approx(3000 - 0.01)
    assert spend.burn.per_day_usd == pytest.approx(total / spend.burn.seconds * 86_400)
    assert spend.burn.per_month_usd == pytest.approx(spend.burn.per_day_usd * 30)
    assert spend.burn.over(spend.burn.per_day_usd - 0.01) and not spend.burn.over(None)

    assert sum(spend.cost_series) == pytest.approx(total)
    assert len(spend.cost_series) == 60
    by_model = {g.key: g for g in spend.groups["model"]}
    assert by_model["gpt-4o-mini"].calls == 3 and by_model["gpt-4o-mini"].no_usage == 1
    assert by_model["acme-large-2"].unpriced == 1 and by_model["acme-large-2"].cost_usd == 0
    assert spend.groups["provider"][0].key == "anthropic"
    assert {g.key for g in spend.groups["route"]} == {"/ask", "/summarize", "nightly_digest", None}
    assert {g.key for g in spend.groups["service"]} == {"assistant", "batch"}
    top = spend.top_calls
    assert top[0].trace_id == CALLS[7].trace_id  # 250k tokens of claude-sonnet-4-5
    assert [c.cost_usd for c in top[:8]] == pytest.approx(
        sorted((c for c in costs if c is not None), reverse=True)
    )
    assert [c.cost_usd for c in top[8:]] == [None, None]  # then the unpriced one and the silent one


def test_window_bounds_the_spend(store: Store) -> None:
    totals, burn = spend_summary(store, window_named("5m"), NOW)
    recent = [c for c in CALLS if c.seconds_ago <= 300]
    assert totals.calls == len(recent)
    spent = sum(c.expected_cost() or 0 for c in recent)
    assert totals.cost_usd == pytest.approx(spent)
    assert burn.seconds == pytest.approx(300 - 0.01)
    quiet, no_burn = spend_summary(store, window_named("5m"), NOW + timedelta(hours=2))
    assert quiet.calls == 0 and no_burn.per_day_usd == 0


def test_a_single_fresh_call_is_spread_over_a_minute() -> None:
    totals = replace(EMPTY, calls=1, cost_usd=0.02, first_call=NOW - timedelta(seconds=2))
    burn = burn_rate(totals, NOW)
    assert burn.seconds == MIN_TRAFFIC_S and burn.per_day_usd == pytest.approx(0.02 * 1440)


def test_a_new_model_is_priced_when_it_arrives(store: Store) -> None:
    later = Call(11, "anthropic", "claude-haiku-4-5", 1000, 100, 50)
    write_calls(store.data_dir.spool, [later], 2)
    store.sync()
    row = llm_rows(store, f"trace_id = '{later.trace_id}'")[later.trace_id]
    assert row["cost_usd"] == pytest.approx(later.expected_cost())


def test_a_pricing_failure_never_fails_ingest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(provider: str, model: str) -> list[pricing.PriceRow]:
        raise RuntimeError("price data unreadable")

    monkeypatch.setattr(pricing, "price_rows", broken)
    data_dir = DataDir(tmp_path / "data")
    write_calls(data_dir.spool, CALLS[:2], 1)
    store = open_store(data_dir)
    try:
        store.sync()
        rows = store.query("SELECT input_tokens, cost_usd, priced FROM llm_calls ORDER BY time").rows
        assert rows == [(1200, None, False), (900, None, False)]  # tokens kept, unpriced
    finally:
        store.close()


# --- the real SDKs, wrapped, against the stand-in -------------------------------------------------------------

LONG_SYSTEM = "You answer questions about the pottery shop's stock. " * 100  # ~1350 tokens: cacheable
SDK_SCRIPT = r"""
import asyncio, json, sys
import anthropic, openai
from opentelemetry import trace

url, out = sys.argv[1], sys.argv[2]
tracer = trace.get_tracer("llm-script")
oa = openai.OpenAI(base_url=url + "/v1", api_key="test", max_retries=0)
an = anthropic.Anthropic(base_url=url, api_key="test", max_retries=0)
reported = []

def openai_call(name, model, stream=False, include_usage=False):
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "which mug for tea?"}]
    with tracer.start_as_current_span(name):
        if not stream:
            usage = oa.chat.completions.create(model=model, messages=messages).usage
        else:
            usage = None
            options = {"stream_options": {"include_usage": True}} if include_usage else {}
            for chunk in oa.chat.completions.create(model=model, messages=messages, stream=True, **options):
                usage = chunk.usage or usage
    cached = usage.prompt_tokens_details.cached_tokens if usage and usage.prompt_tokens_details else 0
    reported.append({"name": name, "provider": "openai", "model": model, "stream": stream,
                     "input": usage and usage.prompt_tokens, "output": usage and usage.completion_tokens,
                     "cache_read": usage and cached, "cache_write": usage and 0})

def anthropic_call(name, model, stream=False):
    system = [{"type": "text", "text": SYSTEM, "cache_control": {"type": "ephemeral"}}]
    messages = [{"role": "user", "content": "which mug for tea?"}]
    with tracer.start_as_current_span(name):
        if not stream:
            usage = an.messages.create(model=model, max_tokens=200, system=system, messages=messages).usage
        else:
            with an.messages.stream(model=model, max_tokens=200, system=system, messages=messages) as events:
                usage = events.get_final_message().usage
    read, write = usage.cache_read_input_tokens or 0, usage.cache_creation_input_tokens or 0
    # Anthropic's input_tokens leaves the cached prefix out; genai-prices (and llm_calls) count it in
    reported.append({"name": name, "provider": "anthropic", "model": model, "stream": stream,
                     "input": usage.input_tokens + read + write, "output": usage.output_tokens,
                     "cache_read": read, "cache_write": write})

async def async_call(name, model):
    client = openai.AsyncOpenAI(base_url=url + "/v1", api_key="test", max_retries=0)
    with tracer.start_as_current_span(name):
        usage = (await client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "gift ideas?"}])).usage
    reported.append({"name": name, "provider": "openai", "model": model, "stream": False,
                     "input": usage.prompt_tokens, "output": usage.completion_tokens, "cache_read": 0,
                     "cache_write": 0})

openai_call("call-1", "gpt-4o")
openai_call("call-2", "gpt-4o")                                       # the same prefix again: cached
openai_call("call-3", "gpt-4o-mini", stream=True, include_usage=True)
openai_call("call-4", "gpt-4o-mini", stream=True)                     # no usage reported
openai_call("call-5", "acme-large-2")                                 # unknown to genai-prices
anthropic_call("call-6", "claude-sonnet-4-20250514")                  # writes the cache
anthropic_call("call-7", "claude-sonnet-4-20250514")                  # reads it
anthropic_call("call-8", "claude-3-5-haiku-20241022", stream=True)
anthropic_call("call-9", "claude-3-5-haiku-20241022")
asyncio.run(async_call("call-10", "gpt-4o-mini"))
with open(out, "w") as f:
    json.dump(reported, f)
"""


def test_real_sdks_against_the_stand_in(tmp_path: Path) -> None:
    import json

    from sample_app.standin import serve_in_thread
    from tests.conftest import assert_no_internal_errors, query, run, wrapped

    script = tmp_path / "llm_app.py"
    script.write_text(f"SYSTEM = {LONG_SYSTEM!r}\n" + SDK_SCRIPT)
    reported_file = tmp_path / "reported.json"
    data_dir = tmp_path / "data"
    server, url = serve_in_thread(seed=1)
    try:
        result = run(
            wrapped(data_dir, sys.executable, str(script), url, str(reported_file), service="shop-llm")
        )
    finally:
        server.close()
    assert result.returncode == 0, result.stderr
    assert_no_internal_errors(result.stdout + result.stderr)
    reported = {c["name"]: c for c in json.loads(reported_file.read_text())}
    assert len(reported) == 10
    assert reported["call-2"]["cache_read"] > 0 and reported["call-6"]["cache_write"] > 0
    assert reported["call-7"]["cache_read"] > 0 and reported["call-4"]["input"] is None

    rows = {r["route"]: r for r in query(data_dir, "SELECT * FROM llm_calls")}
    assert sorted(rows) == sorted(reported)  # exactly one row per call: the SDK's own spans folded in
    sdk_spans = query(data_dir, "SELECT count(*) AS n FROM spans WHERE name = 'anthropic.messages.create'")
    assert sdk_spans[0]["n"] == 4
    for name, call in reported.items():
        row = rows[name]
        assert (row["provider"], row["model"], row["service_name"]) == (
            call["provider"],
            call["model"],
            "shop-llm",
        )
        assert row["streamed"] is call["stream"], name
        if call["input"] is None:
            assert not row["usage_reported"] and row["cost_usd"] is None and row["input_tokens"] is None, name
            continue
        assert row["usage_reported"], name
        assert (row["input_tokens"], row["output_tokens"]) == (call["input"], call["output"]), name
        assert (row["cache_read_tokens"] or 0, row["cache_write_tokens"] or 0) == (
            call["cache_read"],
            call["cache_write"],
        ), name
        try:
            expected = calc_price(
                Usage(
                    input_tokens=call["input"],
                    output_tokens=call["output"],
                    cache_read_tokens=call["cache_read"],
                    cache_write_tokens=call["cache_write"],
                ),
                model_ref=call["model"],
                provider_id=call["provider"],
            ).total_price
        except LookupError:
            assert row["cost_usd"] is None and not row["priced"], name
            continue
        assert row["cost_usd"] == pytest.approx(float(expected), rel=1e-9), name

    sums: dict[str, list[int]] = {}
    for call in reported.values():
        total = sums.setdefault(call["model"], [0, 0])
        total[0] += call["input"] or 0
        total[1] += call["output"] or 0
    by_model = query(
        data_dir,
        "SELECT model, sum(input_tokens) AS i, sum(output_tokens) AS o FROM llm_calls GROUP BY model",
    )
    assert {r["model"]: [r["i"] or 0, r["o"] or 0] for r in by_model} == sums
    assert rows["call-5"]["cost_usd"] is None  # acme-large-2: unpriced, not $0
