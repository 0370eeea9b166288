"""`obsdash mcp` end to end: the MCP SDK's own stdio client talks to `obsdash mcp` started as a subprocess, over a
store filled by two wrapped runs of the sample shop (the first with the crashing /checkout and LLM calls, the
second "after the fix": no crash). Every answer is checked against the store read independently with
`obsdash query`; the SQL tool must refuse writes and ATTACH and say when it cut a result.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
import requests
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from sample_app.standin import serve_in_thread
from sample_app.traffic import run_traffic
from tests.conftest import child_env, free_port, obsdash_cmd, query, run, wait_for_port, wrapped

TOOLS = {
    "recent_errors",
    "get_trace",
    "search_traces",
    "slow_routes",
    "llm_spend",
    "list_runs",
    "compare_runs",
    "production_findings",
    "capture_health",
    "run_sql",
}


def _shop_run(data_dir: Path, workdir: Path, standin: str, crash: bool) -> None:
    """One wrapped run of the shop: mixed traffic, the crash and LLM calls when `crash`; only good requests
    otherwise. Stopped with SIGTERM so its end record lands."""
    port = free_port()
    command = [sys.executable, "-m", "sample_app.app", "--port", str(port), "--upstream", standin]
    command += ["--db", str(workdir / f"shop-{crash}.db")]
    shop = subprocess.Popen(
        wrapped(data_dir, *command, service="shop"),
        env=child_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_port(port)
        paths = ["/checkout?qty=2"] * 5 + ["/items"] * 5
        if crash:
            run_traffic(url, duration=3.0, concurrency=2)
            paths += ["/checkout?qty=abc"] * 3 + ["/suggest?q=mu", "/items/1/pitch"]
            requests.post(f"{url}/assistant", json={"question": "Which mug?"}, timeout=30)
        for path in paths:
            requests.get(url + path, timeout=30)
    finally:
        shop.terminate()
        shop.wait(timeout=15)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A data dir holding two runs of the shop: with the crash, then without."""
    workdir = tmp_path_factory.mktemp("mcp")
    data_dir = workdir / "obsdash-data"
    server, standin = serve_in_thread(seed=1)
    try:
        _shop_run(data_dir, workdir, standin, crash=True)
        _shop_run(data_dir, workdir, standin, crash=False)
    finally:
        server.close()
    yield data_dir


async def _session(data_dir: Path, calls: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "obsdash", "mcp", "--data-dir", str(data_dir)], env=child_env()
    )
    answers: dict[str, Any] = {}
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        answers["tools"] = (await session.list_tools()).tools
        for key, (name, arguments) in enumerate(calls):
            result = await session.call_tool(name, arguments)
            answers[str(key)] = (result.is_error, "\n".join(c.text for c in result.content))  # type: ignore[union-attr]
    return answers


@pytest.fixture(scope="module")
def facts(store: Path) -> dict[str, Any]:
    """What the store holds, read with `obsdash query` (before the MCP server runs)."""
    rows = query(
        store,
        """SELECT
             (SELECT arg_max(trace_id, time) FROM errors WHERE route = '/checkout') AS crash_trace,
             (SELECT count(*) FROM errors WHERE route = '/checkout') AS crashes,
             (SELECT list(trace_id) FROM errors WHERE route = '/checkout') AS crash_traces,
             (SELECT any_value(fingerprint) FROM errors WHERE route = '/checkout') AS fingerprint,
             (SELECT count(DISTINCT fingerprint) FROM errors) AS groups,
             (SELECT any_value(trace_id) FROM spans WHERE http_route LIKE '%/pitch' AND is_root) AS pitch_trace,
             (SELECT sum(cost_usd) FROM llm_calls) AS cost,
             (SELECT count(*) FROM llm_calls) AS calls,
             (SELECT sum(input_tokens) FROM llm_calls) AS input_tokens,
             (SELECT sum(output_tokens) FROM llm_calls) AS output_tokens,
             (SELECT count(*) FROM llm_calls WHERE NOT usage_reported) AS no_usage,
             (SELECT count(*) FROM spans) AS spans,
             (SELECT count(*) FROM ingested_segments) AS segments,
             (SELECT list(run_id ORDER BY started) FROM runs) AS runs""",
    )[0]
    rows["routes"] = query(
        store,
        "SELECT coalesce(http_route, name) AS route, count(*) AS n FROM spans WHERE is_root GROUP BY 1",
    )
    rows["per_run"] = query(
        store,
        """SELECT run_id, http_route AS route, count(*) AS n, count(*) FILTER (WHERE status_code = 'ERROR') AS e
           FROM spans WHERE is_root AND kind = 'SERVER' GROUP BY ALL""",
    )
    rows["pitch_spans"] = query(
        store, f"SELECT span_id, parent_span_id, name FROM spans WHERE trace_id = '{rows['pitch_trace']}'"
    )
    rows["by_model"] = query(store, "SELECT model, count(*) AS n FROM llm_calls GROUP BY 1")
    return rows


CALLS = {
    "errors": ("recent_errors", {"window": "all"}),
    "crash_trace": ("get_trace", {"trace_id": "{crash_trace_prefix}"}),
    "pitch_trace": ("get_trace", {"trace_id": "{pitch_trace}"}),
    "bad_trace": ("get_trace", {"trace_id": "not-hex"}),
    "search": ("search_traces", {"text": "/checkout", "errors_only": True, "window": "all", "limit": 100}),
    "routes": ("slow_routes", {"window": "all", "limit": 100}),
    "spend": ("llm_spend", {"window": "all"}),
    "runs": ("list_runs", {}),
    "compare": ("compare_runs", {"run_a": "previous", "run_b": "latest"}),
    "findings_before": ("production_findings", {"run": "previous"}),
    "findings_after": ("production_findings", {"run": "latest"}),
    "health": ("capture_health", {"window": "all"}),
    "count": ("run_sql", {"sql": "SELECT count(*) AS n FROM spans"}),
    "delete": ("run_sql", {"sql": "DELETE FROM spans"}),
    "attach": ("run_sql", {"sql": "ATTACH '{store}/other.db' AS other"}),
    "big": ("run_sql", {"sql": "SELECT * FROM range(10000)"}),
}


@pytest.fixture(scope="module")
def answers(store: Path, facts: dict[str, Any]) -> dict[str, Any]:
    """Every tool's answer from one `obsdash mcp` session, keyed as CALLS."""
    values = {
        "crash_trace_prefix": facts["crash_trace"][:8],
        "pitch_trace": facts["pitch_trace"],
        "store": store,
    }
    calls = [
        (name, {k: v.format(**values) if isinstance(v, str) else v for k, v in args.items()})
        for name, args in CALLS.values()
    ]
    found = anyio.run(_session, store, calls)
    return {"tools": found["tools"]} | {key: found[str(i)] for i, key in enumerate(CALLS)}


def ok(answers: dict[str, Any], key: str) -> str:
    is_error, text = answers[key]
    assert not is_error, text
    return str(text)


def rows_of(text: str, header: str) -> list[list[str]]:
    """The rows of the aligned table whose header line starts with `header`."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = []
    for line in lines[start + 1 :]:
        if not line.strip() or line.startswith(("[", "by ", "costliest")):
            break
        rows.append(re.split(r"\s{2,}", line.strip()))
    return rows


def test_tools_are_listed_with_descriptions(answers: dict[str, Any]) -> None:
    tools = {t.name: t for t in answers["tools"]}
    assert set(tools) == TOOLS
    for tool in tools.values():
        assert tool.description and len(tool.description) > 80, tool.name
        assert tool.annotations.read_only_hint is True
    sql = tools["run_sql"].description
    for table in (
        "spans(",
        "logs(",
        "errors(",
        "llm_calls(",
        "runs(",
        "http_route VARCHAR",
        "cost_usd DOUBLE",
    ):
        assert table in sql


def test_recent_errors_show_the_crash_with_count_and_stack(
    answers: dict[str, Any], facts: dict[str, Any]
) -> None:
    text = ok(answers, "errors")
    assert f"{facts['groups']} error group(s)" in text
    group = text.split(f"fingerprint {facts['fingerprint']}")[0].rsplit("[", 1)[-1]
    assert "ValueError: invalid literal for int()" in group
    assert f"count {facts['crashes']} ·" in group and "route /checkout" in group
    assert facts["crashes"] >= 3
    after = text.split(f"fingerprint {facts['fingerprint']}")[1]
    assert after.startswith(f" · example trace {facts['crash_trace']}")
    assert 'sample_app/app.py", line' in after and "in checkout" in after  # the app's own frame


def test_trace_by_prefix_is_the_crash_with_its_logs(answers: dict[str, Any], facts: dict[str, Any]) -> None:
    text = ok(answers, "crash_trace")
    assert text.startswith(f"trace {facts['crash_trace']} ·")
    assert "GET /checkout · SERVER" in text and "http.status_code=500" in text
    assert "! exception ValueError" in text and "in checkout" in text
    assert "Exception on /checkout" in text  # Flask's log line, under its trace


def test_trace_tree_matches_the_stored_spans(answers: dict[str, Any], facts: dict[str, Any]) -> None:
    text = ok(answers, "pitch_trace")
    spans = facts["pitch_spans"]
    assert f"· {len(spans)} spans ·" in text.splitlines()[0]
    parents = {s["span_id"]: s["parent_span_id"] for s in spans}

    def depth(span_id: str) -> int:
        parent = parents[span_id]
        return 0 if parent not in parents else 1 + depth(parent)

    expected = Counter((depth(s["span_id"]), s["name"]) for s in spans)
    tree = [line for line in text.splitlines() if " · CLIENT · " in line or " · SERVER · " in line]
    shown = Counter(((len(line) - len(line.lstrip(" "))) // 2, line.strip().split(" · ")[0]) for line in tree)
    assert shown == expected
    assert max(d for d, _ in expected) >= 2  # the anthropic SDK's own span nests under the instrumentor's
    assert "gen_ai.usage.input_tokens=" in text and "db.statement=SELECT" in text


def test_bad_trace_id_is_a_clear_tool_error(answers: dict[str, Any]) -> None:
    is_error, text = answers["bad_trace"]
    assert is_error and "is not a trace id" in text and "hex digits" in text


def test_search_finds_every_crashed_checkout(answers: dict[str, Any], facts: dict[str, Any]) -> None:
    rows = rows_of(ok(answers, "search"), "start (UTC)")
    assert len(rows) == facts["crashes"]
    assert {r[3] for r in rows} == {"/checkout"} and {r[5] for r in rows} == {"500"}
    assert facts["crash_trace"] in {r[1] for r in rows}


def test_slow_routes_counts_equal_the_store(answers: dict[str, Any], facts: dict[str, Any]) -> None:
    rows = rows_of(ok(answers, "routes"), "service")
    assert {r[1]: int(r[3]) for r in rows} == {r["route"]: r["n"] for r in facts["routes"]}
    p95 = [float(r[7]) for r in rows]
    assert p95 == sorted(p95, reverse=True)


def test_llm_spend_equals_llm_calls(answers: dict[str, Any], facts: dict[str, Any]) -> None:
    text = ok(answers, "spend")
    assert f"calls {facts['calls']} · input tokens {facts['input_tokens']} " in text
    assert f"output tokens {facts['output_tokens']} ·" in text
    assert f"cost ${facts['cost']:.6f} over " in text
    assert f"{facts['no_usage']} reported no usage" in text and facts["no_usage"] >= 1  # /suggest streams
    assert re.search(r"run-rate \$[0-9.]+/day", text)
    by_model = {r[0]: int(r[1]) for r in rows_of(text, "model")}
    assert by_model == {r["model"]: r["n"] for r in facts["by_model"]}


def test_runs_and_their_comparison(answers: dict[str, Any], facts: dict[str, Any]) -> None:
    first, second = facts["runs"]
    listed = [r[0] for r in rows_of(ok(answers, "runs"), "run_id")]
    assert listed == [second, first]
    text = ok(answers, "compare")
    assert text.startswith(f"A = {first} (previous)") and f"B = {second} (latest)" in text
    per_route = {r[0]: r for r in rows_of(text, "route")}
    stored = {(r["run_id"], r["route"]): r for r in facts["per_run"]}
    checkout_a, checkout_b = stored[first, "/checkout"], stored[second, "/checkout"]
    assert per_route["/checkout"][1] == f"{checkout_a['n']}→{checkout_b['n']}"
    assert checkout_a["e"] > 0 and checkout_b["e"] == 0
    assert per_route["/checkout"][2].endswith("→0.0%")
    assert per_route["/assistant"][5].endswith("→0")  # LLM calls only in the first run


def test_findings_of_the_run_with_the_crash_and_of_the_fixed_one(
    answers: dict[str, Any], facts: dict[str, Any]
) -> None:
    first, second = facts["runs"]
    before = ok(answers, "findings_before")
    assert before.startswith(f"Production-readiness findings for run {first}: ")
    crash = f"ERROR [unhandled_exception] /checkout: ValueError failed {facts['crashes']} requests"
    assert crash in before
    examples = before.split(crash)[1].split("example traces: ")[1].split("\n")[0].split()
    assert examples and set(examples) <= set(facts["crash_traces"])
    after = ok(answers, "findings_after")
    assert after.startswith(f"Production-readiness findings for run {second}: ")
    assert "[unhandled_exception]" not in after


def test_capture_health(answers: dict[str, Any], facts: dict[str, Any]) -> None:
    text = ok(answers, "health")
    assert f"segments ingested {facts['segments']} · bad spool lines skipped 0" in text
    assert "records dropped in the app by reason: none" in text


def test_sql_reads_refuses_writes_and_cuts(
    answers: dict[str, Any], facts: dict[str, Any], store: Path
) -> None:
    assert ok(answers, "count").splitlines()[2].strip() == str(facts["spans"])
    for key, verb in (("delete", "DELETE"), ("attach", "ATTACH")):
        is_error, text = answers[key]
        assert is_error and f"{verb} statements are not allowed: queries are read-only" in text
    big = ok(answers, "big").splitlines()
    assert big[-1].startswith("[result cut at 100 rows: the query returned more")
    assert sum(line.strip().isdigit() for line in big) == 100
    assert query(store, "SELECT count(*) AS n FROM spans")[0]["n"] == facts["spans"]  # nothing deleted
    assert not (store / "other.db").exists()


def test_stdout_carries_only_the_protocol(store: Path) -> None:
    messages = [
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "raw", "version": "0"},
            },
        },
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "list_runs", "arguments": {}}},
    ]
    server = subprocess.Popen(
        obsdash_cmd("mcp", "--data-dir", str(store)),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=child_env(),
    )
    assert server.stdin and server.stdout
    server.stdin.write("".join(json.dumps(m) + "\n" for m in messages))
    server.stdin.flush()
    replies = [json.loads(server.stdout.readline()) for _ in range(2)]  # each line is one JSON-RPC message
    server.stdin.close()  # the client leaves: the server exits, printing nothing more on stdout
    rest = server.stdout.read()
    assert server.wait(timeout=30) == 0
    assert [r.get("id") for r in replies] == [1, 2] and rest == ""
    assert "run_id" in replies[1]["result"]["content"][0]["text"]


def test_without_the_sdk_one_line_says_how_to_install(tmp_path: Path) -> None:
    code = "import sys; sys.modules['mcp'] = None; from obsdash.cli import main; raise SystemExit(main(sys.argv[1:]))"
    done = run([sys.executable, "-c", code, "mcp", "--data-dir", str(tmp_path / "d")])
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        "obsdash: `obsdash mcp` needs the MCP SDK, mcp>=2.0 (pip install 'obsdash[mcp]')"
    ]
