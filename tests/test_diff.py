"""`obsdash diff`: a planted regression between two runs of one app is marked; the unchanged route is not."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sample_app.standin import serve_in_thread
from tests.conftest import APPS, assert_no_internal_errors, obsdash_cmd, run, wrapped


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    server, url = serve_in_thread(seed=5)
    data_dir = tmp_path_factory.mktemp("diff") / "data"
    for version in ("v1", "v2"):
        result = run(wrapped(data_dir, sys.executable, str(APPS / "diff_app.py"), version, url), timeout=120)
        assert result.returncode == 0, result.stderr
        assert_no_internal_errors(result.stderr)
    yield data_dir
    server.close()


def diff(data_dir: Path, *args: str) -> tuple[int, Any]:
    result = run(obsdash_cmd("diff", "--data-dir", str(data_dir), *args))
    assert result.returncode in (0, 1), result.stderr
    return result.returncode, result.stdout


def test_planted_regression_is_marked_and_fails_the_gate(two_runs: Path) -> None:
    status, out = diff(two_runs, "--format", "json", "--fail-on-regression")
    assert status == 1
    found = {(c["route"], c["figure"]) for c in json.loads(out)["regressions"]}
    assert {("/search", "p50"), ("/search", "p95"), ("/pay", "error rate"), ("/ask", "tokens/call")} <= found
    assert ("/ask", "cost/call") in found  # twenty times the prompt: more dollars per call
    assert not {figure for route, figure in found if route == "/items"}
    routes = {r["route"]: {c["figure"]: c for c in r["changes"]} for r in json.loads(out)["routes"]}
    assert routes["/pay"]["requests"]["a"] == routes["/pay"]["requests"]["b"] == "9"
    assert routes["/pay"]["error rate"]["b"] == "33.3%"


def test_text_marks_and_reversed_runs_improve(two_runs: Path) -> None:
    status, out = diff(two_runs)
    assert status == 0 and "regression" in out and "▲" in out
    assert "/search" in out and "/items" in out
    # B→A: the planted changes are now improvements (an LLM call's latency may move either way: not planted)
    _, out = diff(two_runs, "latest", "previous", "--format", "json")
    planted = {
        ("/search", "p50"),
        ("/search", "p95"),
        ("/pay", "error rate"),
        ("/ask", "tokens/call"),
        ("/ask", "cost/call"),
    }
    assert not planted & {(c["route"], c["figure"]) for c in json.loads(out)["regressions"]}
    directions = {
        (r["route"], c["figure"]): c["direction"] for r in json.loads(out)["routes"] for c in r["changes"]
    }
    assert directions[("/search", "p95")] == -1 and directions[("/pay", "error rate")] == -1


def test_unknown_run_is_one_line(two_runs: Path) -> None:
    result = run(obsdash_cmd("diff", "--data-dir", str(two_runs), "nope", "latest"))
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "nope" in result.stderr


def test_llm_figures_are_shown_per_call() -> None:
    from obsdash.diff import route_changes
    from obsdash.store.queries.runs import RouteComparison, RunFigures

    # B made half the calls and spent less in all, but each call cost more: the cell says so, marked worse
    a = RunFigures(100, 0, 10.0, 20.0, llm_calls=10, input_tokens=9000, output_tokens=1000, cost_usd=0.0290)
    b = RunFigures(100, 0, 10.0, 20.0, llm_calls=5, input_tokens=7000, output_tokens=500, cost_usd=0.0230)
    changes = {c.figure: c for c in route_changes(RouteComparison("/ask", a, b))}
    assert (changes["tokens/call"].a, changes["tokens/call"].b) == ("1,000", "1,500")
    assert (changes["cost/call"].a, changes["cost/call"].b) == ("$0.0029", "$0.0046")
    assert changes["tokens/call"].direction == 1 and changes["cost/call"].direction == 1
