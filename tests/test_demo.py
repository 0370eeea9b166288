"""The README's main job, shortened: the sample app wrapped, with traffic, then the summary from the store."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.conftest import REPO, obsdash_cmd, run, scalar


def test_demo_runs_and_reports_routes_and_errors(tmp_path: Path) -> None:
    data_dir = tmp_path / "demo"
    result = run(
        [
            sys.executable,
            "-m",
            "sample_app.demo",
            "--duration",
            "4",
            "--data-dir",
            str(data_dir),
            "--no-dashboard",
            "--fail-rate",
            "0.5",
        ],
        timeout=120,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for expected in ("/items", "/checkout", "/weather", "/orders", "ValueError"):
        assert expected in result.stdout
    log = (data_dir / "sample_app.log").read_text()
    assert "obsdash-internal-error" not in log
    assert scalar(data_dir, "SELECT count(DISTINCT fingerprint) FROM errors WHERE route = '/checkout'") == 1
    assert scalar(data_dir, "SELECT count(*) > 0 FROM spans WHERE db_system = 'sqlite'")

    # `obsdash report` names the sample app's planted problems, with traces to open, and fails a CI gate
    report = run(
        obsdash_cmd("report", "--data-dir", str(data_dir), "--budget-per-day", "0.0001", "--fail-on", "error")
    )
    assert report.returncode == 1, report.stderr
    blocks = report.stdout.split("\n\n")
    expected = {
        "/checkout  ValueError failed": "ERROR",
        "answered 429": "ERROR",  # the weather API: no retry
        "/orders  the same query up to": "WARNING",  # the N+1 pattern
        "over the budget of $0.0001/day": "ERROR",
    }
    for text, severity in expected.items():
        block = next((b for b in blocks if text in b), "")
        assert block.startswith(severity), (text, report.stdout)
        assert "traces:" in block or "LLM spend" in block, block
