"""`obsdash report`: the CLI entry — pick the scope, bring the store up to date, build, print, set the status."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from obsdash.errors import ObsdashError

if TYPE_CHECKING:  # the parser imports this module to build `--help`: the store and Rich load only to run
    from obsdash.hub.client import Store
    from obsdash.report.findings import Finding
    from obsdash.store.queries.findings import Scope

EXIT_FINDINGS = 1
"""`--fail-on` met: a CI job fails on it (errors in obsdash itself exit 2)."""


def add_arguments(command: argparse.ArgumentParser) -> None:
    """The flags of `obsdash report`."""
    scope = command.add_mutually_exclusive_group()
    scope.add_argument("--run", metavar="ID", help="one run (`latest` for the newest); default: --since 24h")
    scope.add_argument("--since", metavar="T", help="a window (5m, 15m, 1h, 6h, 24h, all) or an ISO time")
    command.add_argument("--format", choices=("text", "json", "markdown"), default="text")
    command.add_argument(
        "--fail-on",
        choices=("warning", "error"),
        help="exit 1 when a finding is this severe or worse (for CI)",
    )
    command.add_argument(
        "--slow-ms", type=float, default=500.0, help="a route is slow when its p95 is over this"
    )
    command.add_argument("--n-plus-one", type=int, default=5, help="repeats of one query per trace to flag")


def _since(text: str, now: datetime) -> datetime:
    from obsdash.store.queries.window import window_named

    try:
        return window_named(text).start(now)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ObsdashError(
            f"--since {text!r} is neither a window nor an ISO time", hint="e.g. 1h or 2026-11-24T09:00"
        ) from None
    # A time without a zone is the user's local time; the store keeps naive UTC, like `now`.
    return parsed.astimezone(UTC).replace(tzinfo=now.tzinfo)


def scope_of(store: Store, args: argparse.Namespace, now: datetime) -> tuple[Scope, str]:
    """The scope the flags ask for, and a heading naming it."""
    from obsdash.store.queries.findings import Scope, latest_run, run_started

    if args.run:
        run_id = latest_run(store) if args.run == "latest" else args.run
        started = run_started(store, run_id) if run_id else None
        if run_id is None or started is None:
            raise ObsdashError(
                f"no run {args.run!r} in the store", hint="`obsdash query 'FROM runs'` lists them"
            )
        return Scope(started - timedelta(seconds=1), run_id), f"obsdash report — run {run_id}"
    since = _since(args.since or "24h", now)
    return Scope(since), f"obsdash report — since {args.since or '24h'}"


def run_report(args: argparse.Namespace) -> int:
    """Print the findings; 1 when `--fail-on` is met, else 0."""
    from obsdash.datadir import resolve
    from obsdash.hub.client import open_store
    from obsdash.report.findings import Thresholds, build
    from obsdash.store.queries.window import utc_now

    store = open_store(resolve(args.data_dir))
    store.sync()
    now = utc_now()
    scope, heading = scope_of(store, args, now)
    thresholds = Thresholds(
        slow_p95_ms=args.slow_ms, n_plus_one=max(2, args.n_plus_one), budget_per_day=args.budget_per_day
    )
    findings = build(store, scope, thresholds, now)
    _print(findings, heading, args.format)
    return EXIT_FINDINGS if _fails(findings, args.fail_on) else 0


def _fails(findings: list[Finding], floor: str | None) -> bool:
    from obsdash.report.findings import at_least

    return floor is not None and any(at_least(f.severity, floor) for f in findings)


def _print(findings: list[Finding], heading: str, fmt: str) -> None:
    from rich.console import Console

    from obsdash.report import render

    if fmt == "json":
        print(render.as_json(findings, heading))
    elif fmt == "markdown":
        print(render.as_markdown(findings, heading), end="")
    else:
        render.as_text(findings, heading, Console(highlight=False, soft_wrap=True, file=sys.stdout))
