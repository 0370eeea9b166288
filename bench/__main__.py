"""Run every benchmark (P1–P7) and write one Markdown table: `python -m bench [--quick | --full] [--out FILE]`.

Each benchmark compares obsdash with its peer or limit in the same run (see its module); this collects their
headline rows into one table, with the machine, the versions, the load average and the date, followed by each
benchmark's own table. Sizes:

- `--quick`: small sizes, a few minutes (P6/P7 on a 100k-span store);
- default: the sizes of docs/benchmarks.md for P1–P5, P6/P7 on a 1M-span store (about 15 minutes);
- `--full`: P4 at 100k-400k spans (whether a batch holds a full row group changes its ratio), P6/P7 at 1M and
  10M spans as well (the 10M store takes about a minute to build; cached), and P7 with the `all` window too.

`--only P1,P3` runs a subset. A benchmark that fails is reported in its row and makes the exit status 1; one that
cannot run here (P7 without tmux) says so. Stores for P6/P7 are built once under `--cache-dir` and reused.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from bench._common import parse_count, short_count
from bench.headline import Headline, load_average, machine, machine_lines, skipped, summary_table

IDS = ("P1", "P2", "P3", "P4", "P5", "P6", "P7")


@dataclass(frozen=True)
class Sizes:
    """How much each benchmark does."""

    startup_runs: int = 21
    startup_light_peer: bool = True
    throughput_rounds: int = 9
    """P2 differs from its peer by ~4 % of a request's CPU, inside the noise: runs of 5 rounds gave 0.92-1.09."""
    throughput_seconds: float = 5.0
    throughput_warmup: float = 1.0
    span_spans: int = 20_000
    span_rounds: int = 5
    span_warmup: int = 2_000
    span_burst: int = 100_000
    ingest_spans: tuple[int, ...] = (200_000,)
    ingest_repeat: int = 5
    fresh_spans: int = 60
    fresh_interval: float = 0.1
    dashboard_sizes: tuple[int, ...] = (1_000_000,)
    dashboard_repeat: int = 9
    tui_sizes: tuple[int, ...] = (1_000_000,)
    tui_windows: tuple[str, ...] = ("1h",)
    """The dashboard's window at start-up; `all` reads every stored span (the worst case for memory)."""
    tui_repeat: int = 3
    cache_dir: Path = Path("/tmp/obsdash-bench")


PRESETS = {
    "default": Sizes(),
    "quick": Sizes(
        startup_runs=7,
        throughput_rounds=2,
        throughput_seconds=3.0,
        span_spans=10_000,
        span_rounds=2,
        ingest_spans=(50_000,),
        ingest_repeat=2,
        fresh_spans=30,
        dashboard_sizes=(100_000,),
        dashboard_repeat=3,
        tui_sizes=(100_000,),
        tui_repeat=1,
    ),
    "full": Sizes(
        ingest_spans=(100_000, 200_000, 300_000, 400_000),
        dashboard_sizes=(1_000_000, 10_000_000),
        tui_sizes=(1_000_000, 10_000_000),
        tui_windows=("1h", "all"),
    ),
    # For tests/test_bench_harness.py: every code path, figures meaningless.
    "tiny": Sizes(
        startup_runs=2,
        startup_light_peer=False,
        throughput_rounds=1,
        throughput_seconds=1.0,
        throughput_warmup=0.2,
        span_spans=2_000,
        span_rounds=1,
        span_warmup=200,
        span_burst=2_000,
        ingest_spans=(2_000,),
        ingest_repeat=1,
        fresh_spans=5,
        fresh_interval=0.05,
        dashboard_sizes=(5_000,),
        dashboard_repeat=1,
        tui_sizes=(5_000,),
        tui_repeat=1,
    ),
}

Stage = Callable[[Sizes], tuple[list[Headline], str]]


def p1(sizes: Sizes) -> tuple[list[Headline], str]:
    from bench import startup

    result = startup.measure(sizes.startup_runs, light_peer=sizes.startup_light_peer)
    check = f"wrapped runs that recorded their start: {result.wrapped_starts} of {result.expected_starts}"
    return startup.headline(result), f"{startup.table(result)}\n\n{check}"


def p2(sizes: Sizes) -> tuple[list[Headline], str]:
    from bench import throughput

    args = throughput.parser().parse_args(
        [
            f"--rounds={sizes.throughput_rounds}",
            f"--seconds={sizes.throughput_seconds}",
            f"--warmup={sizes.throughput_warmup}",
        ]
    )
    result = throughput.measure(args)
    details = (
        f"gunicorn 1 {args.worker} worker, {args.connections} connections, {args.seconds:g} s per run, "
        f"{args.rounds} rounds\n\n{throughput.table(result)}\n\nobsdash's drop counters: {result.dropped or 'none'}"
    )
    return throughput.headline(result), details


def p3(sizes: Sizes) -> tuple[list[Headline], str]:
    from bench import span_cost

    result = span_cost.measure(sizes.span_spans, sizes.span_rounds, sizes.span_warmup, sizes.span_burst)
    details = f"{result.spans:,} spans per run, {result.rounds} rounds\n\n{span_cost.table(result)}"
    if result.burst:
        details += "\n\n" + span_cost.burst_table(result)
    return span_cost.headline(result), details


def p4(sizes: Sizes) -> tuple[list[Headline], str]:
    from bench import ingest

    rows: list[Headline] = []
    parts = []
    for spans in sizes.ingest_spans:
        result = ingest.measure(spans, repeat=sizes.ingest_repeat)
        rows += ingest.headline(result, spans)
        parts.append(f"{spans:,} spans, median of {sizes.ingest_repeat}\n\n{ingest.table(result)}")
    return rows, "\n\n".join(parts)


def p5(sizes: Sizes) -> tuple[list[Headline], str]:
    from bench import freshness

    results = freshness.measure_both(sizes.fresh_spans, sizes.fresh_interval)
    return freshness.headline(results, sizes.fresh_spans), freshness.table(results)


def p6(sizes: Sizes) -> tuple[list[Headline], str]:
    from bench import dashboard

    results = dashboard.measure_sizes(
        [(n, 24.0) for n in sizes.dashboard_sizes], sizes.dashboard_repeat, sizes.cache_dir
    )
    details = f"{dashboard.p6_summary(results)}\n\n{dashboard.screens_table(results)}"
    return dashboard.headline(results), details


def p7(sizes: Sizes) -> tuple[list[Headline], str]:
    from bench import dashboard, tui_startup

    if shutil.which("tmux") is None:
        return [skipped("P7", "TUI first screen and memory", "≤ 1,500 ms; ≤ 300 MB", "needs tmux")], ""
    rows: list[Headline] = []
    table = []
    for spans in sizes.tui_sizes:
        data_dir, _end, _built = dashboard.ensure_store(sizes.cache_dir, spans, 24.0, rebuild=False)
        for window in sizes.tui_windows:
            measured = tui_startup.measure(str(data_dir), window, sizes.tui_repeat)
            rows += tui_startup.headline(measured, f"{short_count(spans)} spans", window)
            table.append(
                f"{short_count(spans)} spans / 24 h, window {window}: "
                + _tui_line(measured, sizes.tui_repeat)
            )
    return rows, "\n".join(table)


def _tui_line(measured: tuple[float, float, float], repeat: int) -> str:
    first, walk, rss = measured
    return (
        f"first screen {first * 1000:,.0f} ms, walk 5 views {walk * 1000:,.0f} ms, peak RSS {rss:.0f} MB "
        f"(median of {repeat})"
    )


STAGES: dict[str, tuple[str, Stage]] = {
    "P1": ("start-up added by `obsdash wrap`", p1),
    "P2": ("Flask throughput under gunicorn", p2),
    "P3": ("cost per span and burst drops", p3),
    "P4": ("ingest against read_json", p4),
    "P5": ("freshness", p5),
    "P6": ("dashboard refresh", p6),
    "P7": ("TUI first screen and memory", p7),
}


def run_stage(id_: str, sizes: Sizes) -> tuple[list[Headline], str, bool]:
    """One benchmark: its rows, its details, and whether it ran to the end."""
    title, stage = STAGES[id_]
    print(f"[bench] {id_} {title} ... (load {load_average()})", file=sys.stderr, flush=True)
    started = time.perf_counter()
    try:
        rows, details = stage(sizes)
        ok = True
    except Exception as exc:
        failure = f"failed: {type(exc).__name__}: {str(exc)[:200]}"
        rows = [Headline(id_, title, *[float("nan")] * 2, "", "", float("nan"), "", None, failure)]
        details = "```\n" + traceback.format_exc()[-3000:] + "```"
        ok = False
    print(f"[bench] {id_} done in {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    return rows, details, ok


def run_all(chosen: list[str], sizes: Sizes) -> tuple[list[Headline], dict[str, str], bool]:
    """Run the benchmarks `chosen` in order: every headline row, each one's details, and whether all ran."""
    rows: list[Headline] = []
    details: dict[str, str] = {}
    all_ok = True
    for id_ in chosen:
        stage_rows, text, ok = run_stage(id_, sizes)
        rows += stage_rows
        details[id_] = text
        all_ok &= ok
    return rows, details, all_ok


def report(rows: list[Headline], details: dict[str, str], command: str, info: dict[str, str]) -> str:
    """The whole Markdown document."""
    parts = [
        f"# obsdash benchmarks, {info['date']}",
        "",
        f"`{command}`",
        "",
        machine_lines(info) + f" Load average at the end: {load_average()}.",
        "",
        summary_table(rows),
        "",
        "Ratios: obsdash ÷ peer (P1 added time, P3 µs/span: lower is better; P2 req/s, P4 spans/s: higher is "
        "better); for a limit, obsdash ÷ limit.",
    ]
    for id_, text in details.items():
        if text:
            parts += ["", f"## {id_} — {STAGES[id_][0]}", "", text]
    return "\n".join(parts) + "\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_const", dest="preset", const="quick", help="small sizes")
    size.add_argument("--full", action="store_const", dest="preset", const="full", help="P6/P7 at 1M and 10M")
    size.add_argument("--tiny", action="store_const", dest="preset", const="tiny", help=argparse.SUPPRESS)
    parser.add_argument("--only", help="comma-separated ids, e.g. P1,P3")
    parser.add_argument(
        "--out", type=Path, help="also write the Markdown here, e.g. docs/benchmarks-latest.md"
    )
    parser.add_argument("--cache-dir", type=Path, help="P6/P7 stores (/tmp/obsdash-bench)")
    parser.add_argument(
        "--store-spans",
        type=parse_count,
        action="append",
        help="P6/P7 store size, repeatable (overrides the preset)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the chosen benchmarks, print the report, optionally write it."""
    args = parse_args(argv)
    sizes = PRESETS[args.preset or "default"]
    if args.cache_dir:
        sizes = replace(sizes, cache_dir=args.cache_dir)
    if args.store_spans:
        sizes = replace(sizes, dashboard_sizes=tuple(args.store_spans), tui_sizes=tuple(args.store_spans))
    chosen = [i.strip().upper() for i in args.only.split(",")] if args.only else list(IDS)
    unknown = [i for i in chosen if i not in STAGES]
    if unknown:
        print(
            f"unknown benchmark id(s): {', '.join(unknown)} (choose from {', '.join(IDS)})", file=sys.stderr
        )
        return 2
    info = machine()
    rows, details, all_ok = run_all(chosen, sizes)
    command = "python -m bench" + (" " + " ".join(argv if argv is not None else sys.argv[1:])).rstrip()
    document = report(rows, details, command, info)
    sys.stdout.write(document)
    if args.out:
        args.out.write_text(document)
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
