"""The README's main job, shortened: the sample app wrapped, with traffic, then the summary from the store."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.conftest import REPO, run, scalar


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
