"""`obsdash serve` and the `--otlp` flags of the commands that host the hub (`serve`, `tui`).

The intake only writes spool files, so it runs in whichever process asked for it, whether that process hosts the
hub or joined another's: the hub's watcher ingests the segments either way. `serve` checks on its hub every
second, so if the host it joined goes away it takes over (the election in hub/client.py) and nothing waits.

Importable without the `otlp` extra, and cheap to import: the parser imports it to build every command line,
including `obsdash wrap`'s (start-up, P1).
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from obsdash.datadir import DataDir, prepare, resolve
from obsdash.errors import ObsdashError

if TYPE_CHECKING:
    from types import TracebackType

    from obsdash.otlp.intake import Intake

DEFAULT_PORT = 4318
HUB_CHECK_S = 1.0


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 0-65535, not {port}")
    return port


def add_otlp_options(command: argparse.ArgumentParser) -> None:
    """`--otlp` and `--otlp-port N`."""
    command.add_argument(
        "--otlp",
        action="store_true",
        help="also accept OTLP/HTTP (protobuf and JSON) from other apps, on 127.0.0.1 only",
    )
    command.add_argument(
        "--otlp-port",
        type=_port,
        default=DEFAULT_PORT,
        metavar="N",
        help=f"port for --otlp (default {DEFAULT_PORT}; 0 picks a free one)",
    )


def start_intake(args: argparse.Namespace, data_dir: DataDir) -> Intake | None:
    """The OTLP intake, listening, when `--otlp` was given; else None."""
    if not getattr(args, "otlp", False):
        return None
    try:
        from obsdash.otlp.intake import Intake
    except ModuleNotFoundError as exc:
        if (exc.name or "").partition(".")[0] not in ("google", "opentelemetry"):
            raise
        raise ObsdashError(
            "--otlp needs the OTLP protobuf classes (opentelemetry-proto)", hint="pip install 'obsdash[otlp]'"
        ) from None
    return Intake(prepare(data_dir), args.otlp_port).start()


class OtlpIntake:
    """The intake for the length of a command (`tui --otlp`), stopped on the way out."""

    def __init__(self, args: argparse.Namespace, data_dir: DataDir) -> None:
        self.intake = start_intake(args, data_dir)

    def __enter__(self) -> Intake | None:
        return self.intake

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        if self.intake is not None:
            self.intake.stop()


def run_serve(args: argparse.Namespace) -> int:
    """Host the hub (or join it) and, with --otlp, the intake, until SIGTERM or Ctrl-C; then exit 0."""
    import signal
    import threading

    from obsdash.hub.client import open_store

    data_dir = resolve(args.data_dir)
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        intake = start_intake(args, data_dir)  # first: a port in use fails before the hub is opened
        try:
            store = open_store(data_dir)
            try:
                _announce(data_dir, store.is_host, intake)
                while not stop.wait(HUB_CHECK_S):
                    store.stats()  # a client whose host went away re-elects here, and may become the hub
            finally:
                store.close()
        finally:
            if intake is not None:
                intake.stop()
                sys.stderr.write(f"obsdash: OTLP intake: {intake.stats.summary()}\n")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def _announce(data_dir: DataDir, is_host: bool, intake: Any) -> None:
    role = "hosting the hub" if is_host else "joined the running hub"
    line = f"obsdash: serving {data_dir.root} ({role})"
    if intake is not None:
        host, port = intake.address
        line += f"; OTLP/HTTP on http://{host}:{port} (/v1/traces, /v1/metrics, /v1/logs)"
    sys.stderr.write(line + "; Ctrl-C or SIGTERM to stop\n")
    sys.stderr.flush()
