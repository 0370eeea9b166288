"""The benchmark harness runs end to end at tiny sizes and writes a table with every P row.

Structure only: every benchmark runs (real subprocesses, gunicorn, the hub, tmux when installed), its figures are
finite and positive, its honesty checks hold (wrapped runs recorded, spans stored = requests answered, nothing
dropped in a small burst), and `python -m bench` prints and writes the same document. No timing is asserted:
speed is what `python -m bench` measures (docs/benchmarks.md).
"""

from __future__ import annotations

import math
import re
import shutil
from pathlib import Path

import pytest

from bench import startup
from bench.__main__ import IDS, PRESETS, main, report, run_all
from bench.headline import Headline, machine, skipped, summary_table

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Headline], dict[str, str], bool]:
    """Every benchmark once, at the tiny preset (about a minute on a quiet 2-core machine)."""
    from dataclasses import replace

    sizes = replace(PRESETS["tiny"], cache_dir=tmp_path_factory.mktemp("bench-stores"))
    return run_all(list(IDS), sizes)


def by_id(rows: list[Headline], id_: str) -> list[Headline]:
    return [r for r in rows if r.id == id_]


def test_every_benchmark_runs_and_has_a_row(tiny_run: tuple[list[Headline], dict[str, str], bool]) -> None:
    rows, details, all_ok = tiny_run
    failed = [f"{r.id}: {r.note}\n{details.get(r.id, '')}" for r in rows if r.note.startswith("failed")]
    assert all_ok, "\n".join(failed)
    assert {r.id for r in rows} == set(IDS)
    tmux = shutil.which("tmux") is not None
    for row in rows:
        if row.id == "P7" and not tmux:
            assert row.met is None and "tmux" in row.note
            continue
        assert math.isfinite(row.value) and row.value >= 0, row
        assert math.isfinite(row.peer) and row.peer >= 0, row  # a burst's peer may lose nothing
        assert math.isfinite(row.ratio) and row.ratio >= 0, row
        assert row.met in (True, False), row
    # P1, P2, P3 (µs/span), P4 and P5 compare two positive measurements.
    for row in [
        *by_id(rows, "P1"),
        *by_id(rows, "P2"),
        *by_id(rows, "P3")[:2],
        *by_id(rows, "P4"),
        *by_id(rows, "P5"),
    ]:
        assert row.value > 0 and row.peer > 0 and row.ratio > 0, row
    assert len(by_id(rows, "P3")) == 3  # against OTLP/HTTP, against the SDK's own span, the burst
    assert len(by_id(rows, "P6")) == 2  # 1h and all, one store


def test_honesty_checks_hold(tiny_run: tuple[list[Headline], dict[str, str], bool]) -> None:
    rows, details, _ = tiny_run
    # P1: every wrapped Python run (whole and in-app) recorded its start in the spool.
    match = re.search(r"recorded their start: (\d+) of (\d+)", details["P1"])
    assert match and match[1] == match[2] and int(match[1]) > 0, details["P1"]
    # P2: each flask request under obsdash became one stored span; the probe saw the peer instrumented.
    (p2,) = by_id(rows, "P2")
    stored = re.search(r"spans stored ([\d,]+) of ([\d,]+) requests", p2.note)
    assert stored and stored[1] == stored[2] and stored[1] != "0", p2.note
    # P3: every span of the timed runs reached the store; the small burst lost nothing, and nothing was counted.
    cost, against_sdk, burst = by_id(rows, "P3")
    assert against_sdk.value == cost.value and against_sdk.ratio == cost.value / against_sdk.peer
    spans = re.search(r"stored ([\d,]+) of ([\d,]+)", cost.note)
    assert spans and spans[1] == spans[2], cost.note
    assert burst.value == 0 and burst.met, burst
    # The peers' timed runs exported every span too (their queues are sized to the run).
    exported = re.findall(r"SDK.* ([\d,]+) / ([\d,]+) \|$", details["P3"], re.MULTILINE)
    assert len(exported) == 3 and all(a == b for a, b in exported), details["P3"]
    # P4: one more round timed statement by statement; the row quotes its read, its insert and the limit.
    from bench import ingest

    for phase in (ingest.READ_PHASE, ingest.INSERT_PHASE, ingest.LIMIT_PHASE):
        timed = re.search(rf"\| {re.escape(phase)} +\| +([\d.]+) \| +([\d.]+) \|", details["P4"])
        assert timed and float(timed[1]) > 0, (phase, details["P4"])
    (p4,) = by_id(rows, "P4")
    assert re.fullmatch(
        r"batch read [\d.]+ s on [\d.]+ cores; insert .*; commit & rest .*; limit .* cores", p4.note
    ), p4.note


def test_report_has_the_summary_then_the_details(
    tiny_run: tuple[list[Headline], dict[str, str], bool],
) -> None:
    rows, details, _ = tiny_run
    document = report(rows, details, "python -m bench --tiny", machine())
    summary = [line for line in document.splitlines() if re.match(r"\| P\d ", line)]
    assert [line.split("|")[1].strip() for line in summary] == [r.id for r in rows]
    assert "cores" in document and "opentelemetry-sdk" in document and "load average" in document
    for id_ in ("P1", "P2", "P3", "P4", "P5", "P6"):
        assert f"## {id_} — " in document


def test_main_prints_and_writes_the_same_document(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "latest.md"
    status = main(["--tiny", "--only", "P4", "--out", str(out)])
    printed = capsys.readouterr().out
    assert status == 0
    assert out.read_text() == printed
    assert "| P4 " in printed and "| P1 " not in printed


def test_unknown_id_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--only", "P9"]) == 2
    assert "P9" in capsys.readouterr().err


def test_table_marks_met_missed_and_not_measured() -> None:
    rows = [
        Headline("P1", "a", 12.0, 300.0, "ms", "peer", 0.04, "≤ 60 ms", True),
        Headline("P2", "b", 900.0, 1000.0, "req/s", "peer", 0.9, "≥ 0.95×", False, "why"),
        skipped("P7", "c", "≤ 1,500 ms", "needs tmux"),
    ]
    lines = summary_table(rows).splitlines()
    assert len(lines) == 5
    assert "✓" in lines[2] and "✗" in lines[3] and "–" in lines[4] and "needs tmux" in lines[4]


def test_importtime_lines_are_parsed() -> None:
    text = "import time: self [us] | cumulative | imported package\nimport time:       250 |       1300 |   json.decoder\n"
    assert startup.import_times(text) == [("json.decoder", 250, 1300, 1)]
