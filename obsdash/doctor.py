"""`obsdash doctor`: is obsdash working, and what did it miss?

It looks at the data directory on disk first (size, spool backlog, file modes — before opening the store, which
would ingest the backlog and make the directories private), then joins the hub (or hosts it for a moment), brings
the store up to date and reads, for the latest runs or the one asked for, what each process instrumented, skipped
or failed to instrument, its start-up cost, and what it dropped, failed on or redacted (the processes' latest
`stats`/`end` records: docs/spool-format.md).

Exit status: 0 when nothing was lost, 1 when it found a problem (records dropped, bad lines at ingest, internal
errors, an instrumentor that failed, a file or directory others can read), 2 on an error (no data, unknown run).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.text import Text

from obsdash.datadir import DataDir
from obsdash.errors import ObsdashError
from obsdash.hub.client import Store, open_store
from obsdash.store.queries import doctor as q
from obsdash.store.retention_policy import describe
from obsdash.store.segments import kind_of
from obsdash.tui import format as fmt

EXIT_HEALTHY = 0
EXIT_PROBLEMS = 1
DEFAULT_RUNS = 3
MAX_MODE_PROBLEMS_SHOWN = 3
DROP_HINTS = {
    "queue_full": "more than OBSDASH_MAX_QUEUED records waited in memory: a slow or stalled disk, or a burst",
    "disk_full": "the disk holding the data dir was full",
    "spool_write_error": "segment files could not be written (spool unwritable or removed)",
    "after_close": "records made after the process's exit flush",
    "write_error": "a segment write failed unexpectedly (see internal errors)",
}


# -- what is on disk -------------------------------------------------------------------------------------------
@dataclass
class DiskFacts:
    """The data directory as found, before obsdash touched it."""

    size: int = 0
    store_size: int | None = None
    """None: no store file yet (apps wrote to the spool, no hub has run)."""
    waiting: int = 0
    """Segments in the spool not ingested yet."""
    ingested: int = 0
    """Segments in spool/ingested/ (kept for a rebuild)."""
    not_private: list[tuple[str, int, int]] = field(default_factory=list)
    """(path relative to the data dir, mode found, mode wanted)."""


def inspect_disk(data_dir: DataDir) -> DiskFacts:
    """Sizes, backlog and modes of everything under the data dir; ObsdashError when there is nothing to look at."""
    root = data_dir.root
    if not root.exists():
        raise ObsdashError(f"no obsdash data in {root}", hint="wrap a command first, or pass --data-dir")
    if not root.is_dir():
        raise ObsdashError(f"{root} is not a directory", hint="pass the data dir with --data-dir")
    if not data_dir.database.exists() and not data_dir.spool.is_dir():
        raise ObsdashError(f"no obsdash data in {root}", hint="wrap a command first, or pass --data-dir")
    facts = DiskFacts()
    _check_mode(facts, root, root, os.lstat(root))
    for path, info in _walk(root):
        _check_mode(facts, root, path, info)
        if stat.S_ISREG(info.st_mode):
            facts.size += info.st_size
            if path.parent == root and path.name.startswith(data_dir.database.name):
                if ".corrupt-" not in path.name:  # a damaged store moved aside for a rebuild
                    facts.store_size = (facts.store_size or 0) + info.st_size
            elif path.parent == data_dir.spool and kind_of(path.name):
                facts.waiting += 1
            elif path.parent == data_dir.ingested and kind_of(path.name):
                facts.ingested += 1
    return facts


def _walk(root: Path) -> Iterable[tuple[Path, os.stat_result]]:
    pending = [root]
    while pending:
        directory = pending.pop()
        try:
            entries = list(os.scandir(directory))
        except OSError as exc:
            raise ObsdashError(f"cannot read {directory}: {exc.strerror or exc}") from None
        for entry in entries:
            try:
                info = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue  # a segment moved or a .tmp renamed meanwhile
            path = Path(entry.path)
            yield path, info
            if stat.S_ISDIR(info.st_mode):
                pending.append(path)


def _check_mode(facts: DiskFacts, root: Path, path: Path, info: os.stat_result) -> None:
    if stat.S_ISLNK(info.st_mode):
        return
    wanted = 0o700 if stat.S_ISDIR(info.st_mode) else 0o600
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077:  # S3: nobody but the owner reads telemetry
        name = str(path.relative_to(root)) if path != root else "."
        facts.not_private.append((name + ("/" if stat.S_ISDIR(info.st_mode) else ""), mode, wanted))


# -- what the store says ---------------------------------------------------------------------------------------
@dataclass
class RunReport:
    """One run, its processes' figures combined."""

    run: q.RunInfo
    processes: list[q.ProcessInfo]
    instrumented: dict[str, float] = field(default_factory=dict)
    """library -> ms to load its instrumentor (the slowest process)."""
    skipped: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)
    written: dict[str, int] = field(default_factory=dict)
    internal_errors: dict[str, int] = field(default_factory=dict)
    redactions: dict[str, int] = field(default_factory=dict)

    @classmethod
    def combine(cls, run: q.RunInfo, processes: list[q.ProcessInfo]) -> RunReport:
        """Add up the processes' latest counters (each is cumulative for its own process)."""
        report = cls(run, processes)
        for proc in processes:
            for total, counts in (
                (report.dropped, proc.dropped),
                (report.written, proc.written),
                (report.internal_errors, proc.internal_errors),
                (report.redactions, proc.redactions),
            ):
                for name, n in counts.items():
                    total[name] = total.get(name, 0) + n
            for library, status in proc.instrumentation.items():
                ms = proc.instrumentation_ms.get(library, 0.0)
                if status.startswith("failed"):
                    report.failed[library] = status.removeprefix("failed: ")
                elif status == "instrumented":
                    report.instrumented[library] = max(ms, report.instrumented.get(library, 0.0))
                else:
                    report.skipped.setdefault(library, status.removeprefix("skipped: "))
        for library in report.failed | report.instrumented:
            report.skipped.pop(library, None)
        for library in report.failed:
            report.instrumented.pop(library, None)
        return report

    @property
    def root(self) -> q.ProcessInfo | None:
        """The process `obsdash wrap` exec'd into."""
        return next((p for p in self.processes if p.is_root), None)

    def problems(self) -> list[str]:
        """What this run lost or failed at, one phrase each."""
        found = []
        name = f"run {self.run.run_id}"
        for reason, n in sorted(self.dropped.items()):
            if n:
                hint = DROP_HINTS.get(reason, "")
                found.append(f"{name}: {n} records dropped ({reason}{': ' + hint if hint else ''})")
        errors = sum(self.internal_errors.values())
        if errors:
            where = ", ".join(f"{w} {n}" for w, n in sorted(self.internal_errors.items()))
            found.append(f"{name}: {errors} internal errors ({where}; OBSDASH_STRICT=1 prints them)")
        for library, why in sorted(self.failed.items()):
            found.append(f"{name}: the {library} instrumentor failed ({why})")
        return found


@dataclass
class Diagnosis:
    """Everything doctor found."""

    data_dir: DataDir
    disk: DiskFacts
    hub_pid: int | None
    """The running hub's pid; None when none was running (doctor hosted it for the check)."""
    ingest: q.IngestTotals
    runs: list[RunReport]
    retention: dict[str, Any] | None = None
    """The hub's retention status: the policy and the bytes it applies to."""

    def problems(self) -> list[str]:
        """Everything that makes the exit status 1."""
        found = [problem for run in self.runs for problem in run.problems()]
        if self.ingest.bad_lines:
            found.append(
                f"{self.ingest.bad_lines} bad lines skipped at ingest (lines that were not valid records)"
            )
        if self.disk.not_private:
            found.append(
                f"{len(self.disk.not_private)} files or directories others can read (S3: chmod 700 dirs, 600 files)"
            )
        return found


def diagnose(data_dir: DataDir, run_id: str | None) -> Diagnosis:
    """Look at the disk, then the store; ObsdashError for no data or an unknown run."""
    disk = inspect_disk(data_dir)
    store = open_store(data_dir)
    try:
        hub_pid = None if store.is_host else int(store.stats()["pid"])
        store.sync()
        runs = _runs(store, run_id)
        reports = [RunReport.combine(run, q.run_processes(store, run.run_id)) for run in runs]
        retention = store.stats().get("retention")
        return Diagnosis(data_dir, disk, hub_pid, q.ingest_totals(store), reports, retention)
    finally:
        store.close()


def _runs(store: Store, run_id: str | None) -> list[q.RunInfo]:
    if run_id is None:
        return q.latest_runs(store, DEFAULT_RUNS)
    run = q.find_run(store, run_id)
    if run is None:
        latest = ", ".join(r.run_id for r in q.latest_runs(store, DEFAULT_RUNS)) or "none yet"
        raise ObsdashError(f"no run {run_id} in the store", hint=f"latest runs: {latest}")
    return [run]


# -- output ----------------------------------------------------------------------------------------------------
def render(diagnosis: Diagnosis, console: Console) -> int:
    """Print the diagnosis; the exit status (0 healthy, 1 problems found)."""
    for line in _header(diagnosis):
        console.print(line)
    if not diagnosis.runs:
        console.print(Text("no runs in the store yet", style="dim"))
    for run in diagnosis.runs:
        console.print()
        for line in _run_lines(run):
            console.print(line)
    console.print()
    problems = diagnosis.problems()
    if not problems:
        console.print(
            Text("verdict: healthy — nothing dropped, nothing failed, files private", style="bold green")
        )
        return EXIT_HEALTHY
    noun = "problem" if len(problems) == 1 else "problems"
    console.print(Text(f"verdict: {len(problems)} {noun}", style="bold red"))
    for problem in problems:
        console.print(Text(f"  - {problem}", style="red"))
    return EXIT_PROBLEMS


def _row(label: str, *parts: str | tuple[str, str] | Text) -> Text:
    return Text.assemble(Text(f"  {label:<17}", style="bold"), *parts)


def _header(d: Diagnosis) -> list[Text]:
    disk, ingest = d.disk, d.ingest
    lines = [
        Text.assemble(("obsdash doctor  ", "bold"), str(d.data_dir.root)),
        _row(
            "data dir",
            f"{_size(disk.size)}, "
            + (f"store {_size(disk.store_size)}" if disk.store_size is not None else "no store yet")
            + f"; spool: {disk.waiting} segments waiting, {disk.ingested} ingested",
        ),
        _row(
            "hub",
            f"running, pid {d.hub_pid}"
            if d.hub_pid is not None
            else ("not running (doctor hosted it to ingest the spool)", "dim"),
        ),
    ]
    if disk.not_private:
        shown = ", ".join(
            f"{name} {mode:o} (want {want:o})"
            for name, mode, want in sorted(disk.not_private, key=_shallow_first)[:MAX_MODE_PROBLEMS_SHOWN]
        )
        more = len(disk.not_private) - MAX_MODE_PROBLEMS_SHOWN
        lines.append(_row("file modes", (shown + (f" and {more} more" if more > 0 else ""), "red")))
    else:
        lines.append(_row("file modes", "private (dirs 700, files 600)"))
    bad = f"{ingest.bad_lines} bad lines skipped" if ingest.bad_lines else "no bad lines"
    where = ", ".join(f"{name} ({n})" for name, n in ingest.bad_segments)
    lines.append(
        _row("ingest", f"{ingest.segments} segments stored, ", (bad, "red" if ingest.bad_lines else ""))
    )
    if where:
        lines.append(_row("", (f"latest with bad lines: {where}", "dim")))
    if d.retention:
        lines.append(_row("retention", (describe(d.retention), "yellow" if d.retention.get("note") else "")))
    return lines


def _shallow_first(problem: tuple[str, int, int]) -> tuple[int, str]:
    """The data dir, the store and the spool before the thousands of segments under them."""
    name = problem[0].rstrip("/")
    return (0 if name == "." else name.count("/") + 1, name)


def _run_lines(report: RunReport) -> list[Text]:
    run = report.run
    lines = [
        Text.assemble(
            ("run ", "bold"),
            (run.run_id, "bold cyan"),
            "  ",
            (run.service_name or "?", "cyan"),
            "  ",
            run.command or "(no start record)",
        ),
        _row("when", _when(run, report)),
        _row(
            "instrumented",
            ", ".join(f"{lib} {ms:.0f} ms" for lib, ms in sorted(report.instrumented.items()))
            or ("none", "dim"),
        ),
    ]
    if report.skipped:
        lines.append(
            _row("skipped", ", ".join(f"{lib} ({why})" for lib, why in sorted(report.skipped.items())))
        )
    if report.failed:
        failed = ", ".join(f"{lib} ({why})" for lib, why in sorted(report.failed.items()))
        lines.append(_row("failed", (failed, "red")))
    lines.append(_row("start-up", _startup(report)))
    lines.append(_row("written", _counts(report.written) or ("nothing yet", "dim")))
    lines.append(_counts_row("dropped", report.dropped))
    lines.append(_counts_row("internal errors", report.internal_errors))
    lines.append(_row("redactions", _counts(report.redactions) or ("none", "dim")))
    return lines


def _counts_row(label: str, counts: dict[str, int]) -> Text:
    total = sum(counts.values())
    if not total:
        return _row(label, ("none", "dim"))
    shown = _counts(counts) if len(counts) == 1 else f"{total}: {_counts(counts)}"
    return _row(label, (shown, "bold red"))


def _when(run: q.RunInfo, report: RunReport) -> str:
    started = fmt.local_time(run.started, with_date=True) if run.started else "?"
    processes = f"{run.processes} process" + ("es" if run.processes != 1 else "")
    silent = sum(1 for p in report.processes if not p.ended)
    unended = f" ({silent} without an end record: running, or killed)" if silent else ""
    if run.ended is None:
        return f"{started}, not ended, {processes}{unended}"
    took = fmt.duration((run.ended - run.started).total_seconds() * 1000) if run.started else "?"
    return f"{started}, took {took}, exit {run.exit_code}, {processes}{unended}"


def _startup(report: RunReport) -> str:
    root = report.root
    parts = []
    if root is not None and root.startup_ms is not None:
        parts.append(f"{root.startup_ms:.1f} ms in bootstrap")
    others = [p.startup_ms for p in report.processes if not p.is_root and p.startup_ms]
    if others:
        parts.append(f"up to {max(others):.1f} ms in {len(others)} other processes")
    if report.instrumented:
        # paid on the first import of each library, not at start-up; the first one includes building the SDK
        parts.append(f"{sum(report.instrumented.values()):.0f} ms loading instrumentors on first import")
    return "; ".join(parts) or "no start record"


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {name}" for name, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if n)


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{n} B"


def run_doctor(data_dir: DataDir, run_id: str | None) -> int:
    """`obsdash doctor`: print the diagnosis (colour only on a terminal); 0 healthy, 1 problems found."""
    console = Console(highlight=False, soft_wrap=True, markup=False, emoji=False)
    return render(diagnose(data_dir, run_id), console)
