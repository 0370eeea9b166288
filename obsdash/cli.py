"""The `obsdash` command line: the dashboard, wrap, query, tail, ingest.

Every error a user can cause ends as one line on stderr and a non-zero status; no traceback reaches a user.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from obsdash import __version__
from obsdash.datadir import resolve
from obsdash.errors import ObsdashError

EXIT_USAGE = 2
WINDOW_LABELS = ("5m", "15m", "1h", "6h", "24h", "all")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"obsdash: {message} (see `{self.prog} --help`)\n")
        raise SystemExit(EXIT_USAGE)


def _data_dir_option() -> _Parser:
    parent = _Parser(add_help=False)
    parent.add_argument(
        "--data-dir", metavar="DIR", help="where the store lives (default: $OBSDASH_DIR or ./.obsdash)"
    )
    return parent


def _usd(text: str) -> float:
    try:
        value = float(text.lstrip("$"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an amount of dollars: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"a budget must be more than $0, not {text!r}")
    return value


def _budget_option(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--budget-per-day",
        type=_usd,
        metavar="USD",
        help="flag LLM spend projected above this many dollars a day (default: no budget)",
    )


def _age(text: str) -> float | None:
    from obsdash.store.retention_policy import parse_age

    try:
        return parse_age(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _size(text: str) -> int | None:
    from obsdash.store.retention_policy import parse_size

    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _retention_options(command: argparse.ArgumentParser) -> None:
    """--max-age / --max-size on the commands that host the hub; saved in the store (absent: unchanged)."""
    command.add_argument(
        "--max-age",
        type=_age,
        default=argparse.SUPPRESS,
        metavar="AGE",
        help="prune telemetry older than AGE (90m, 24h, 7d; none: no limit, the default); saved in the store",
    )
    command.add_argument(
        "--max-size",
        type=_size,
        default=argparse.SUPPRESS,
        metavar="SIZE",
        help="keep the data dir's telemetry under SIZE, oldest pruned first (500MB, 2GB; none: no cap; "
        "default 2GB); saved in the store",
    )


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The command-line grammar. The flags that live in a command's own module (report, diff, export, OTLP) are
    added only for `command` (None: for all): importing those modules cost `obsdash wrap` ~15 ms (P1)."""

    def lazy(name: str, add: Callable[[argparse.ArgumentParser], None], sub: argparse.ArgumentParser) -> None:
        if command is None or command == name:
            add(sub)

    common = _data_dir_option()
    parser = _Parser(
        prog="obsdash",
        parents=[common],  # `obsdash --data-dir DIR` alone opens the dashboard on DIR
        description="See inside a Python app that was never instrumented. With no command: the dashboard.",
    )
    parser.add_argument("--version", action="version", version=f"obsdash {__version__}")
    commands = parser.add_subparsers(dest="command", parser_class=_Parser)

    wrap = commands.add_parser("wrap", parents=[common], help="run COMMAND with telemetry captured")
    wrap.add_argument("--service-name", metavar="NAME", help="service.name (default: from the command)")
    wrap.add_argument(
        "--otlp-endpoint",
        metavar="URL",
        help="also send everything to this OTLP/HTTP collector (sets OTEL_EXPORTER_OTLP_ENDPOINT; needs obsdash[otlp])",
    )
    wrap.add_argument("cmd", nargs=argparse.REMAINDER, metavar="[--] COMMAND [ARGS...]")

    query = commands.add_parser("query", parents=[common], help="run read-only SQL over the store")
    query.add_argument("sql", help="one SELECT / WITH / DESCRIBE / SHOW / EXPLAIN statement")
    query.add_argument("--format", choices=("table", "json", "csv"), default="table")
    query.add_argument("--max-rows", type=int, default=10_000, metavar="N", help="cap on rows returned")

    commands.add_parser(
        "mcp", parents=[common], help="serve the telemetry to an AI assistant (MCP over stdio, read-only)"
    )

    ingest = commands.add_parser(
        "ingest", parents=[common], help="bring the store up to date with the spool and exit"
    )
    _retention_options(ingest)

    doctor = commands.add_parser(
        "doctor",
        parents=[common],
        help="is obsdash working, and what did it miss?",
        description="Check the data dir (size, spool backlog, hub, file modes) and, for the latest runs or RUN_ID, "
        "what was instrumented, skipped or failed, the start-up cost, and records dropped, bad lines, internal "
        "errors and redactions.",
        epilog="exit status: 0 healthy; 1 problems found (records dropped, bad lines at ingest, internal errors, "
        "an instrumentor failed, files others can read); 2 error (no data in the dir, unknown run id)",
    )
    doctor.add_argument("--run", metavar="RUN_ID", help="only this run (default: the latest three)")

    tui = commands.add_parser("tui", parents=[common], help="the dashboard (also what `obsdash` alone opens)")
    tui.add_argument("--window", choices=WINDOW_LABELS, default="1h", help="time window shown first")
    _budget_option(tui)
    lazy("tui", _otlp_options, tui)
    _retention_options(tui)

    serve = commands.add_parser(
        "serve", parents=[common], help="host the hub headless; with --otlp, an OTLP/HTTP intake too"
    )
    lazy("serve", _otlp_options, serve)
    _retention_options(serve)

    tail = commands.add_parser("tail", parents=[common], help="print new log lines and errors as they arrive")
    tail.add_argument("--errors", action="store_true", help="errors only, repeats collapsed with a count")
    tail.add_argument("--follow", "-f", action="store_true", help="keep printing as new telemetry arrives")
    tail.add_argument("--service", metavar="S", help="only this service")
    tail.add_argument("--window", choices=WINDOW_LABELS, default="15m", help="how far back to start")
    _budget_option(tail)
    _retention_options(tail)

    report = commands.add_parser(
        "report", parents=[common], help="production-readiness findings from the stored telemetry"
    )
    lazy("report", _report_arguments, report)
    _budget_option(report)

    export = commands.add_parser(
        "export",
        parents=[common],
        help="write the stored telemetry as Parquet or OTLP/JSON files, or send it to an OTLP endpoint",
        epilog="exit status: 0 done; 1 the OTLP endpoint refused records; 2 error",
    )
    lazy("export", _export_arguments, export)

    diff = commands.add_parser(
        "diff", parents=[common], help="compare two runs route by route, regressions marked"
    )
    lazy("diff", _diff_arguments, diff)
    return parser


def _otlp_options(command: argparse.ArgumentParser) -> None:
    from obsdash.otlp.command import add_otlp_options

    add_otlp_options(command)


def _report_arguments(command: argparse.ArgumentParser) -> None:
    from obsdash.report.command import add_arguments

    add_arguments(command)


def _diff_arguments(command: argparse.ArgumentParser) -> None:
    from obsdash.diff import add_arguments

    add_arguments(command)


def _run_wrap(args: argparse.Namespace) -> int:
    from obsdash.wrap import wrap

    command = list(args.cmd)
    if command and command[0] == "--":
        command = command[1:]
    wrap(resolve(args.data_dir), command, args.service_name, args.otlp_endpoint)


def _run_query(args: argparse.Namespace) -> int:
    from obsdash.hub.client import open_store
    from obsdash.output import FORMATTERS

    data_dir = resolve(args.data_dir)
    if not data_dir.root.exists():  # a mistyped --data-dir would otherwise become a new, empty store
        raise ObsdashError(
            f"no obsdash data in {data_dir.root}",
            hint="run your app under `obsdash wrap` first, or point --data-dir / OBSDASH_DIR at its data",
        )
    store = open_store(data_dir)
    result = store.query(args.sql, max_rows=max(1, args.max_rows))
    print(FORMATTERS[args.format](result))
    if result.truncated:
        sys.stderr.write(f"obsdash: result cut at {args.max_rows} rows (use --max-rows to change)\n")
    return 0


def _run_mcp(args: argparse.Namespace) -> int:
    try:
        from obsdash.mcp.server import serve
    except ModuleNotFoundError as exc:  # the SDK is an optional extra
        if (exc.name or "").partition(".")[0] != "mcp":
            raise
        raise ObsdashError(
            "`obsdash mcp` needs the MCP SDK, mcp>=2.0", hint="pip install 'obsdash[mcp]'"
        ) from None
    return serve(resolve(args.data_dir))


def _run_ingest(args: argparse.Namespace) -> int:
    from obsdash.hub.client import open_store

    store = open_store(resolve(args.data_dir))
    report = store.sync()
    records = (
        ", ".join(f"{n} {kind}" for kind, n in sorted(report.get("records", {}).items())) or "nothing new"
    )
    bad = report.get("bad", 0)
    print(
        f"ingested {report.get('segments', 0)} segments: {records}"
        + (f"; {bad} bad lines skipped" if bad else "")
    )
    if hasattr(args, "max_age") or hasattr(args, "max_size"):
        from obsdash.store.retention_policy import describe

        print(describe(store.stats().get("retention") or {}))
    return 0


def _run_doctor(args: argparse.Namespace) -> int:
    from obsdash.doctor import run_doctor

    return run_doctor(resolve(args.data_dir), args.run)


def _run_tui(args: argparse.Namespace) -> int:
    from obsdash.otlp.command import OtlpIntake
    from obsdash.tui.app import run_dashboard

    data_dir = resolve(args.data_dir)
    with OtlpIntake(args, data_dir):  # bound before the dashboard opens: a port in use is one line, not a TUI
        if not (sys.stdin.isatty() and sys.stdout.isatty()):  # else it drew into the pipe and waited for keys
            raise ObsdashError(
                "the dashboard needs a terminal (stdin and stdout are not one)",
                hint="in scripts and pipes use `obsdash tail` or `obsdash query`",
            )
        return run_dashboard(
            data_dir,
            window=getattr(args, "window", "1h"),
            budget_per_day=getattr(args, "budget_per_day", None),
        )


def _run_serve(args: argparse.Namespace) -> int:
    from obsdash.otlp.command import run_serve

    return run_serve(args)


def _run_tail(args: argparse.Namespace) -> int:
    from obsdash.tail import run_tail

    return run_tail(args)


def _export_arguments(command: argparse.ArgumentParser) -> None:
    from obsdash.export.command import add_arguments

    add_arguments(command)


def _run_export(args: argparse.Namespace) -> int:
    from obsdash.export.command import run_export

    return run_export(args)


def _run_report(args: argparse.Namespace) -> int:
    from obsdash.report.command import run_report

    return run_report(args)


def _run_diff(args: argparse.Namespace) -> int:
    from obsdash.diff import run_diff

    return run_diff(args)


HANDLERS = {
    "wrap": _run_wrap,
    "query": _run_query,
    "mcp": _run_mcp,
    "ingest": _run_ingest,
    "doctor": _run_doctor,
    "tui": _run_tui,
    "serve": _run_serve,
    "tail": _run_tail,
    "report": _run_report,
    "export": _run_export,
    "diff": _run_diff,
}


def _request_retention(args: argparse.Namespace) -> None:
    changes = {key: getattr(args, flag) for flag, key in RETENTION_FLAGS.items() if hasattr(args, flag)}
    if changes:  # saved by the first store this process opens (hub/client.open_store)
        from obsdash.store.retention_policy import request

        request(changes)


RETENTION_FLAGS = {"max_age": "max_age_s", "max_size": "max_size"}


def _command_in(arguments: list[str]) -> str:
    """The subcommand named on the command line (`tui` when none is: `obsdash [--data-dir DIR]`)."""
    skip = False
    for word in arguments:
        if skip or word.startswith("-"):
            skip = word == "--data-dir"
            continue
        return word
    return "tui"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `obsdash` console script."""
    arguments = list(argv if argv is not None else sys.argv[1:])
    parser = build_parser(_command_in(arguments))
    args = parser.parse_args(arguments)
    if args.command is None:
        args = parser.parse_args(["tui", *arguments])
    _request_retention(args)
    try:
        return HANDLERS[args.command](args)
    except ObsdashError as exc:
        sys.stderr.write(exc.one_line() + "\n")
        return exc.status
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `obsdash query ... | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit's flush
        return 0
    except OSError as exc:
        # a file obsdash needs: hub.lock on a read-only mount, a full disk, a hub that went away twice
        where = f": {exc.filename}" if exc.filename else ""
        sys.stderr.write(
            f"obsdash: {exc.strerror or exc}{where} (check the data directory, or use another)\n"
        )
        return 1
