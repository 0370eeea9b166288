"""`obsdash mcp`: the telemetry as MCP tools for an AI coding assistant, over stdio, read-only.

The server joins the data directory's hub like any other reader (obsdash.hub.client.Store: it hosts the hub when
none runs) and registers plain functions with the official SDK's MCPServer, which runs each call in a worker
thread. Every answer is text bounded by obsdash.mcp.text. Each call first asks the hub to ingest what the spool
holds (a directory listing when nothing is new), so an assistant that just re-ran the app sees that run.

It must never: write to the store (user SQL takes the same read-only path as `obsdash query`), listen on a network
socket (stdio only), or print on stdout, which belongs to the protocol (the SDK points fd 1 at stderr while it
serves; our messages go to stderr).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Literal

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import Field

from obsdash import __version__
from obsdash.datadir import DataDir
from obsdash.errors import ObsdashError
from obsdash.hub.client import Store, open_store
from obsdash.mcp import findings, runs, tools, traces
from obsdash.store.queries.catalog import Table, store_tables

WindowArg = Annotated[
    Literal["5m", "15m", "1h", "6h", "24h", "all"],
    Field(description="how far back to look, ending now: 5m, 15m, 1h, 6h, 24h or all"),
]
READ_ONLY = ToolAnnotations(
    read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False
)

INSTRUCTIONS = """\
obsdash records what a Python app did at runtime when it was started with `obsdash wrap -- <command>`: \
every request (traces and spans), log line, exception and LLM call, with secrets scrubbed. Use these tools to \
see how the app behaves instead of guessing: start with recent_errors or slow_routes, open one request with \
get_trace, check LLM cost with llm_spend, review production_findings before shipping, and after a fix re-run \
the app under obsdash wrap and compare the runs with compare_runs. All tools are read-only; times are UTC."""

SQL_NOTES = """\
Notes: times are naive UTC TIMESTAMPs; durations are milliseconds. spans.is_root marks a request's root span \
(kind SERVER) or a background job; spans.attributes / resource are JSON (e.g. attributes->>'$."http.target"'). \
errors has one row per exception (fingerprint groups them); llm_calls one row per LLM call, cost_usd NULL when \
unpriced. errors_since(TIMESTAMP) and llm_calls_since(TIMESTAMP) are the same rows bounded by time (much faster \
on a big store than filtering the views)."""


def schema_text(tables: list[Table]) -> str:
    """The store's tables and views with their columns, one line each, for the SQL tool's description."""
    return "\n".join(f"{t.kind} {t.name}({', '.join(f'{c} {ty}' for c, ty in t.columns)})" for t in tables)


class Answers:
    """Runs a tool function against the store: ingest first, and turn obsdash errors into tool errors the
    model reads (`is_error` with the one-line message)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def __call__(self, fn: Callable[..., str], *args: object, **kwargs: object) -> str:
        """`fn(store, *args, **kwargs)` after a sync."""
        try:
            self.store.sync()
            return fn(self.store, *args, **kwargs)
        except ObsdashError as exc:
            raise ToolError(exc.one_line().removeprefix("obsdash: ")) from None
        except ValueError as exc:  # an argument the schema let through but a query rejects
            raise ToolError(str(exc)) from None


def build_server(store: Store) -> MCPServer:
    """The MCP server with every tool bound to `store`."""
    server: MCPServer = MCPServer(
        "obsdash", instructions=INSTRUCTIONS, version=__version__, log_level="WARNING"
    )
    answer = Answers(store)

    def tool(name: str, description: str) -> Callable[[Callable[..., str]], Callable[..., str]]:
        return server.tool(name=name, description=description, annotations=READ_ONLY, structured_output=False)

    @tool(
        "recent_errors",
        "Exceptions the app raised, grouped by fingerprint (exception type + place in the app's code), most "
        "recent first. Each group: count, first/last seen, route(s), message, where it was raised, one stack "
        "trace (innermost frames) and an example trace id to open with get_trace. Start here when something "
        "fails.",
    )
    def recent_errors(
        window: WindowArg = "24h",
        limit: Annotated[int, Field(ge=1, le=50, description="at most this many groups")] = 10,
    ) -> str:
        return answer(tools.recent_errors, window, limit)

    @tool(
        "get_trace",
        "One request (trace) as an indented span tree: each span's name, kind, duration, start offset, status "
        "and the attributes that say what it did (HTTP method/route/status, SQL statement, LLM model and "
        "tokens), exceptions under the span that raised them with one stack trace, then the trace's log lines. "
        "Accepts a trace id or a prefix of it (at least 4 hex digits) from another tool's answer.",
    )
    def get_trace(trace_id: Annotated[str, Field(description="a trace id or a prefix of one")]) -> str:
        return answer(traces.show_trace, trace_id)

    @tool(
        "search_traces",
        "Find requests (root spans) and their trace ids: filter by text (matches span name, route, service, "
        "trace id prefix or an HTTP status such as 500), errors only, sort by time, duration or errors. Open one "
        "with get_trace.",
    )
    def search_traces(
        text: Annotated[str, Field(description="text to match; empty for all")] = "",
        window: WindowArg = "1h",
        sort: Literal["time", "duration", "errors"] = "time",
        errors_only: bool = False,
        limit: Annotated[int, Field(ge=1, le=100)] = 20,
    ) -> str:
        return answer(
            traces.search_traces, text=text, window=window, sort=sort, errors_only=errors_only, limit=limit
        )

    @tool(
        "slow_routes",
        "Per route: request count, failed requests, error %, p50/p95/p99 latency in ms and rate, slowest p95 "
        "first (or sorted by p99, requests or errors). Background work (root spans that are not requests) is "
        "listed with its kind. Use it to find what is slow, then search_traces sorted by duration.",
    )
    def slow_routes(
        window: WindowArg = "1h",
        sort: Literal["p95", "p99", "requests", "errors"] = "p95",
        limit: Annotated[int, Field(ge=1, le=100)] = 20,
    ) -> str:
        return answer(tools.slow_routes, window, sort, limit)

    @tool(
        "llm_spend",
        "What the app's LLM calls cost: calls, input/output/cached tokens and dollars in total, by model and by "
        "route, the run-rate in $/day projected from the window, calls that could not be priced (unknown model) "
        "or reported no usage, and the costliest calls with their trace ids. Figures are those of the llm_calls "
        "view (one row per call).",
    )
    def llm_spend(window: WindowArg = "24h") -> str:
        return answer(tools.spend, window)

    @tool(
        "list_runs",
        "The newest runs (each `obsdash wrap` of the app), newest first: run id, start, length, exit code, "
        "requests, error %, p95, exceptions, LLM calls and cost, command. Run ids feed compare_runs.",
    )
    def list_runs(limit: Annotated[int, Field(ge=1, le=50)] = 10) -> str:
        return answer(runs.runs, limit)

    @tool(
        "compare_runs",
        "Two runs side by side — did a change help? Totals (requests, failed requests, error rate, exceptions, "
        "p50/p95, LLM calls, tokens, cost) with the change from A to B, then every route as A→B. A run is "
        "'latest', 'previous' (the one before latest), a run id or a prefix of one.",
    )
    def compare_runs(
        run_a: Annotated[str, Field(description="the baseline run")] = "previous",
        run_b: Annotated[str, Field(description="the run to compare with it")] = "latest",
    ) -> str:
        return answer(runs.compare, run_a, run_b)

    @tool(
        "production_findings",
        "What would hurt in production, worst first — the findings of `obsdash report`: unhandled exceptions per "
        "route, upstream APIs answering 429/5xx and whether the app retried, N+1 queries, slow routes (p95 over "
        "slow_ms), LLM calls without max_tokens or a timeout, failed LLM calls, spend run-rate, dropped "
        "telemetry, secrets that had to be scrubbed, logs outside traces. Each with severity, where, count, "
        "detail and example trace ids. Over a window, or one run ('latest', 'previous', a run id).",
    )
    def production_findings(
        window: WindowArg = "24h",
        run: Annotated[str, Field(description="a run instead of the window; empty for the window")] = "",
        slow_ms: Annotated[
            float, Field(gt=0, description="a route is slow when its p95 is over this")
        ] = 500.0,
    ) -> str:
        return answer(findings.findings, window, run, slow_ms)

    @tool(
        "capture_health",
        "Whether the telemetry is complete: spool segments ingested, bad lines skipped, records the app side "
        "dropped (by reason), obsdash internal errors, and libraries that were not instrumented (and why). Check "
        "it when something you expected is missing from the other tools.",
    )
    def capture_health(window: WindowArg = "24h") -> str:
        return answer(tools.capture_health, window)

    @tool("run_sql", sql_description(store))
    def run_sql(
        sql: Annotated[str, Field(description="one SELECT / WITH / DESCRIBE / SHOW / SUMMARIZE / EXPLAIN")],
        max_rows: Annotated[int, Field(ge=1, le=tools.SQL_MAX_ROWS)] = tools.SQL_DEFAULT_ROWS,
    ) -> str:
        return answer(tools.sql, sql, max_rows)

    return server


def sql_description(store: Store) -> str:
    """The SQL tool's description, with the store's own schema."""
    return (
        "Run one read-only SQL statement (DuckDB dialect) over the telemetry store and get an aligned table. "
        "Writes, ATTACH, COPY, extensions and file reads are refused. At most max_rows rows come back (default "
        f"{tools.SQL_DEFAULT_ROWS}, at most {tools.SQL_MAX_ROWS}) and cells are cut at 80 characters: aggregate "
        "in SQL rather than fetching raw rows. Use it for what the other tools do not answer.\n"
        f"Schema:\n{schema_text(store_tables(store))}\n{SQL_NOTES}"
    )


def serve(data_dir: DataDir) -> int:
    """Join (or host) the hub of `data_dir` and serve MCP on stdin/stdout until the client closes them."""
    store = open_store(data_dir)
    try:
        store.sync()
        build_server(store).run("stdio")
    finally:
        store.close()
    return 0
