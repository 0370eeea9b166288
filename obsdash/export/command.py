"""`obsdash export`: the CLI entry — choose the scope, bring the store up to date, write or send, summarise.

`--format parquet --out DIR`, `--format otlp-json --out DIR`, or `--otlp-endpoint URL`; `--run ID` (an id, a
prefix, `latest`, `previous`) or `--since T` (a window or an ISO time); default everything. A directory `--out`
creates is 0700 and every file written 0600 (an existing directory keeps its mode). Progress bars (Rich) on a
TTY, nothing but the summary line otherwise.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from obsdash.errors import ObsdashError

if TYPE_CHECKING:  # the parser imports this module to build `--help`: the store and Rich load only to run
    from obsdash.hub.client import Store
    from obsdash.store.queries.export import Selection

EXIT_FAILED = 1
"""Records the endpoint did not take (2 stays for errors in obsdash itself, as everywhere)."""
NOUNS = {"spans": "spans", "logs": "logs", "metric_points": "metric points"}


def add_arguments(command: argparse.ArgumentParser) -> None:
    """The flags of `obsdash export`."""
    scope = command.add_mutually_exclusive_group()
    scope.add_argument("--run", metavar="ID", help="one run: an id, a prefix of one, `latest` or `previous`")
    scope.add_argument("--since", metavar="T", help="a window (5m, 15m, 1h, 6h, 24h, all) or an ISO time")
    command.add_argument("--format", choices=("parquet", "otlp-json"), help="write files into --out")
    command.add_argument("--out", metavar="DIR", help="the directory for --format (created 0700 if missing)")
    command.add_argument(
        "--otlp-endpoint",
        metavar="URL",
        help="send to this OTLP/HTTP endpoint instead (a base URL, as OTEL_EXPORTER_OTLP_ENDPOINT)",
    )


def run_export(args: argparse.Namespace) -> int:
    """Export as asked; 0 when everything was written or taken, 1 when the endpoint refused records."""
    from obsdash.datadir import resolve
    from obsdash.hub.client import open_store

    _check_flags(args)
    store = open_store(resolve(args.data_dir))
    store.sync()
    selection, label = _selection(store, args)
    if args.otlp_endpoint:
        return _replay(store, selection, label, args.otlp_endpoint)
    out = _out_dir(args.out)
    if args.format == "parquet":
        return _parquet(store, selection, label, out)
    return _otlp_json(store, selection, label, out)


def _check_flags(args: argparse.Namespace) -> None:
    if args.otlp_endpoint and (args.format or args.out):
        raise ObsdashError("give either --otlp-endpoint or --format with --out, not both")
    if not args.otlp_endpoint and not (args.format and args.out):
        raise ObsdashError(
            "say where to export", hint="--format parquet|otlp-json --out DIR, or --otlp-endpoint URL"
        )
    if args.otlp_endpoint:
        from urllib.parse import urlsplit

        parts = urlsplit(args.otlp_endpoint)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ObsdashError(
                f"{args.otlp_endpoint!r} is not an http(s) URL", hint="e.g. http://127.0.0.1:4318"
            )
    if args.otlp_endpoint or args.format == "otlp-json":
        _need_otlp_extra()


def _need_otlp_extra() -> None:
    import importlib.util

    for module in ("opentelemetry.exporter.otlp.proto.http", "google.protobuf"):
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:  # a parent package is missing
            found = False
        if not found:
            raise ObsdashError(
                "OTLP export needs opentelemetry-exporter-otlp-proto-http", hint="pip install 'obsdash[otlp]'"
            )


def _selection(store: Store, args: argparse.Namespace) -> tuple[Selection, str]:
    from obsdash.report.command import _since
    from obsdash.store.queries.export import Selection
    from obsdash.store.queries.runs import find_run
    from obsdash.store.queries.window import utc_now

    if args.run:
        run = find_run(store, args.run)
        return Selection(run_id=run.run_id), f"run {run.run_id}"
    if args.since and args.since != "all":
        return Selection(since=_since(args.since, utc_now())), f"since {args.since}"
    return Selection(), "everything"


def _out_dir(raw: str) -> Path:
    out = Path(raw).expanduser().resolve()
    if out.exists() and not out.is_dir():
        raise ObsdashError(f"--out {raw} is not a directory")
    try:
        out.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise ObsdashError(f"cannot create {out}: {exc.strerror or exc}") from None
    return out


@contextmanager
def _progress(totals: dict[str, int], verb: str) -> Iterator[Any]:
    """A Rich progress bar per table on a TTY (stderr); a do-nothing stand-in otherwise."""
    if not sys.stderr.isatty():
        yield lambda table, n: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        tasks = {t: progress.add_task(f"{verb} {NOUNS[t]}", total=n) for t, n in totals.items() if n}
        yield lambda table, n: progress.advance(tasks[table], n) if table in tasks else None


def _parquet(store: Store, selection: Selection, label: str, out: Path) -> int:
    began = time.monotonic()
    written = store.export_parquet(
        str(out), selection.run_id, selection.since.isoformat() if selection.since else None
    )
    size = sum((out / f"{table}.parquet").stat().st_size for table in written)
    rows = ", ".join(f"{table} {n}" for table, n in written.items())
    took = time.monotonic() - began
    print(f"wrote {len(written)} Parquet files of {label} to {out} ({_mb(size)}, {took:.1f} s): {rows}")
    return 0


def _otlp_json(store: Store, selection: Selection, label: str, out: Path) -> int:
    from obsdash.export.otlp_json import FILES, PrivateFile
    from obsdash.export.replay import batches, encode
    from obsdash.store.queries.export import counts

    began = time.monotonic()
    totals = counts(store, selection)
    files = {table: PrivateFile(out / name) for table, name in FILES.items()}
    done = dict.fromkeys(FILES, 0)
    try:
        with _progress(totals, "writing") as advance:
            for batch in batches(store, selection):
                files[batch.table].write_request(encode(batch))
                done[batch.table] += batch.records
                advance(batch.table, batch.records)
    except BaseException:
        for file in files.values():
            file.discard()
        raise
    for file in files.values():
        file.commit()
    size = sum(file.size for file in files.values())
    parts = ", ".join(f"{FILES[t]} ({done[t]} {NOUNS[t]})" for t in FILES)
    print(f"wrote {parts} of {label} to {out} ({_mb(size)}, {time.monotonic() - began:.1f} s)")
    return 0


def _replay(store: Store, selection: Selection, label: str, endpoint: str) -> int:
    from obsdash.export.replay import Sender, batches
    from obsdash.store.queries.export import counts

    began = time.monotonic()
    totals = counts(store, selection)
    sender = Sender(endpoint)
    try:
        with _progress(totals, "sending") as advance:
            for batch in batches(store, selection):
                sender.send(batch)
                advance(batch.table, batch.records)
                if sender.should_stop():
                    break
    finally:
        sender.close()
    sent = ", ".join(f"{sender.sent.get(t, 0)} {NOUNS[t]}" for t in NOUNS)
    line = f"sent {sent} of {label} to {endpoint} in {time.monotonic() - began:.1f} s"
    if not sender.failed:
        print(line)
        return 0
    failed = ", ".join(f"{n} {NOUNS[t]}" for t, n in sender.failed.items())
    unsent = sum(totals.values()) - sum(sender.sent.values()) - sum(sender.failed.values())
    print(
        f"{line}; refused: {failed}"
        + (f"; stopped with {unsent} not tried" if unsent else "")
        + (f" ({sender.last_error})" if sender.last_error else "")
    )
    return EXIT_FAILED


def _mb(size: int) -> str:
    return f"{size / 1e6:.2f} MB" if size >= 10_000 else f"{size} bytes"
