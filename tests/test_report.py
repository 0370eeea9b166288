"""`obsdash report` on planted problems, each next to its clean counterpart (tests/apps/report_app.py).

Each finding must name the planted route with example trace ids that exist in the store, and never the clean
route beside it; `--fail-on` must fail the planted run and pass the clean one.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sample_app.standin import serve_in_thread
from tests.conftest import APPS, assert_no_internal_errors, obsdash_cmd, run, scalar, wrapped


@pytest.fixture(scope="module")
def standin() -> Iterator[str]:
    server, url = serve_in_thread(seed=3)
    yield url
    server.close()


def _wrapped_run(data_dir: Path, mode: str, standin: str) -> Path:
    result = run(wrapped(data_dir, sys.executable, str(APPS / "report_app.py"), mode, standin), timeout=120)
    assert result.returncode == 0, result.stderr
    assert_no_internal_errors(result.stderr)
    return data_dir


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory, standin: str) -> Path:
    return _wrapped_run(tmp_path_factory.mktemp("planted") / "data", "planted", standin)


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory, standin: str) -> Path:
    return _wrapped_run(tmp_path_factory.mktemp("clean") / "data", "clean", standin)


def report(data_dir: Path, *flags: str) -> tuple[int, list[dict[str, Any]]]:
    result = run(
        obsdash_cmd("report", "--data-dir", str(data_dir), "--format", "json", "--slow-ms", "200", *flags)
    )
    assert result.returncode in (0, 1), result.stderr
    return result.returncode, json.loads(result.stdout)["findings"]


def found(findings: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [f for f in findings if f["kind"] == kind]


def assert_examples_exist(data_dir: Path, finding: dict[str, Any]) -> None:
    assert finding["examples"], finding
    listed = ", ".join(f"'{t}'" for t in finding["examples"])
    assert scalar(
        data_dir, f"SELECT count(DISTINCT trace_id) FROM spans WHERE trace_id IN ({listed})"
    ) == len(finding["examples"])


def test_planted_problems_are_named_with_their_traces(planted: Path) -> None:
    status, findings = report(planted, "--fail-on", "error")
    assert status == 1

    (crash,) = found(findings, "unhandled_exception")
    assert (crash["severity"], crash["where"], crash["count"]) == ("error", "/crash", 6)
    assert "ValueError" in crash["title"] and "report_app.py" in crash["detail"]

    upstream = {f["severity"]: f for f in found(findings, "upstream_failure")}
    assert "never retried" in upstream["error"]["title"] and "/rates)" in upstream["error"]["detail"]
    assert upstream["error"]["count"] == 6
    assert "retried 5 of 5" in upstream["info"]["title"]  # the counterpart retries, and is not an error

    (n_plus_one,) = found(findings, "n_plus_one")
    assert (n_plus_one["where"], n_plus_one["count"]) == ("/orders", 6)
    assert "10×" in n_plus_one["title"] and "WHERE id = ?" in n_plus_one["detail"]

    (slow,) = found(findings, "slow_route")
    assert slow["where"] == "/slow"

    (unbounded,) = found(findings, "llm_no_max_tokens")
    assert (unbounded["where"], unbounded["count"]) == ("/ask → gpt-4o-mini", 6)
    (no_timeout,) = found(findings, "llm_default_timeout")  # /ask-bounded sets timeout=20: not flagged
    assert (no_timeout["where"], no_timeout["count"]) == ("/ask → gpt-4o-mini", 6)

    (spend,) = found(findings, "llm_spend")
    assert spend["count"] == 12 == scalar(planted, "SELECT count(*) FROM llm_calls")
    for finding in (crash, upstream["error"], n_plus_one, slow, unbounded, no_timeout):
        assert_examples_exist(planted, finding)


def test_clean_counterparts_pass_fail_on_warning(clean: Path) -> None:
    status, findings = report(clean, "--fail-on", "warning")
    assert status == 0, findings
    assert {f["severity"] for f in findings} <= {"info"}
    assert not found(findings, "unhandled_exception") and not found(findings, "n_plus_one")


def test_budget_turns_spend_into_an_error(clean: Path) -> None:
    status, findings = report(clean, "--fail-on", "error", "--budget-per-day", "0.0001")
    (spend,) = found(findings, "llm_spend")
    assert status == 1 and spend["severity"] == "error" and "over the budget of $0.0001/day" in spend["title"]


def test_run_scope_and_formats(planted: Path) -> None:
    run_id = scalar(planted, "SELECT run_id FROM runs")
    _, by_run = report(planted, "--run", "latest")
    _, by_id = report(planted, "--run", run_id)

    # titles carry the run-rate, which moves with the clock: compare what was found, where, how often
    def key(findings: list[dict[str, Any]]) -> list[tuple[str, str, int]]:
        return [(f["kind"], f["where"], f["count"]) for f in findings]

    assert key(by_run) == key(by_id) and found(by_run, "unhandled_exception")
    text = run(obsdash_cmd("report", "--data-dir", str(planted), "--format", "markdown"))
    assert text.returncode == 0 and "| error | /crash |" in text.stdout
    missing = run(obsdash_cmd("report", "--data-dir", str(planted), "--run", "nope"))
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1 and "no run 'nope'" in missing.stderr
