"""Start, exit, SIGTERM and fork: flush what the process recorded without changing how it ends.

- exit: an atexit handler (registered first, so it runs after the app's own) flushes with a time bound (R4).
- SIGTERM: only when the app left the default action; we flush, restore the default and re-send the signal, so
  the process still dies "killed by SIGTERM" with the same status as bare.
- fork: the child starts with an empty queue and its own pid; children of `multiprocessing` (which leave through
  os._exit, skipping atexit) flush from a multiprocessing finalizer.
"""

from __future__ import annotations

import atexit
import functools
import os
import signal
import sys
import threading
import time

from obsdash_instrumenters import commandline, instrumentations, safety, sigwatch

TYPE_CHECKING = False  # `typing` costs ~10 ms at start-up; mypy still reads the block below
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, NoReturn

    from obsdash_instrumenters.context import RecordContext
    from obsdash_instrumenters.settings import Settings
    from obsdash_instrumenters.spool import SpoolWriter


class Lifecycle:
    """The process-level state of obsdash in this process."""

    def __init__(
        self,
        settings: Settings,
        writer: SpoolWriter,
        ctx: RecordContext,
        shutdown_providers: Callable[[float], None],
    ) -> None:
        self.settings = settings
        self.writer = writer
        self.ctx = ctx
        self.shutdown_providers = shutdown_providers
        self.exit_code: int | None = None
        self.finished = False
        self.started_ns = time.time_ns()
        self._finish_lock = threading.Lock()
        self._finishing = False
        self._signal_after_finish = 0
        self._fork_mask = threading.local()  # per forking thread: whether we blocked SIGTERM for this fork
        self._unblock_in_fork_hook = True

    # -- start -----------------------------------------------------------------------------------
    def install(self, startup_ms: float) -> None:
        """Register exit, signal and fork handlers and record the process start."""
        atexit.register(self.finish)
        self._install_sigterm()
        self._wrap_sys_exit()
        os.register_at_fork(
            before=self._block_sigterm,
            after_in_parent=self._unblock_sigterm,
            after_in_child=self._after_fork_in_child,
        )
        self.writer.stats_record = self._stats_record
        self._record_start(startup_ms)

    def _record_start(self, startup_ms: float, parent_pid: int | None = None) -> None:
        # Scrubbed here (S1): the writer thread encodes this dict later, past the scrubber.
        command, argv = commandline.scrubbed(
            os.environ.get("OBSDASH_COMMAND") or " ".join(sys.argv), list(sys.argv)
        )
        record = {
            "event": "start",
            "time_ns": time.time_ns(),
            "host": self.ctx.host,
            "command": command,
            "argv": argv,
            "root": os.getpid() == self.settings.root_pid,
            "parent_pid": parent_pid or os.getppid(),
            "startup_ms": round(startup_ms, 3),
        }
        # Queued as a dict and encoded by the writer thread: loading the encoder now would cost start-up time.
        self.writer.put("runs", self.ctx.stamp_plain(record))

    def set_exit_code(self, code: int) -> None:
        """What we know of how the process is ending (sys.exit, an unhandled exception, a signal)."""
        self.exit_code = code

    def _wrap_sys_exit(self) -> None:
        real_exit = sys.exit

        @functools.wraps(real_exit)
        def exit(status: Any = None) -> NoReturn:
            if threading.current_thread() is threading.main_thread():  # elsewhere it ends only that thread
                self.exit_code = _exit_status(status)
            real_exit(status)

        sys.exit = exit  # type: ignore[assignment]

    # -- SIGTERM ---------------------------------------------------------------------------------
    def _install_sigterm(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
            return
        signal.signal(signal.SIGTERM, self._on_sigterm)
        try:  # a Python-level handler can miss a SIGTERM that bare Python would die of: sigwatch.py
            watch = sigwatch.SigtermWatch(lambda: self.finished, self._sigterm_is_ours)
            watch.install()
        except BaseException as exc:
            safety.internal_error("lifecycle.sigwatch", exc)

    def _sigterm_is_ours(self) -> bool:
        return bool(signal.getsignal(signal.SIGTERM) == self._on_sigterm)

    def _on_sigterm(self, signum: int, frame: Any) -> None:
        self.exit_code = -signum
        if self._finishing:
            # The signal cut into our own exit flush: a multiprocessing worker handed its stop sentinel, then
            # terminated by `with Pool()` (tests/reliability/test_forks.py lost half the workers' spans so).
            # Dying now would throw that flush away: finish() dies by the signal when done (time-bounded).
            self._signal_after_finish = signum
            return
        self.finish()
        _die_by(signum)

    # -- fork ------------------------------------------------------------------------------------
    def _block_sigterm(self) -> None:
        """Hold SIGTERM back from the child until our fork hook has run (it is unblocked at its end).

        CPython forgets, in the child, a signal that arrived before its own after-fork code ran (it was the
        parent's). A SIGTERM sent to a worker forked a moment ago, not yet running — `with Pool()` terminating it —
        went through our handler's C part and was forgotten: the worker lived on and terminate() waited for ever
        (with sigwatch.py alone, 2 runs in 10 of 200 pools each still hung so: the worker's own wakeup pipe had
        never seen the signal; with both, 0 in 45). Blocked, the signal waits, pending, for the ready child.
        """
        try:
            self._fork_mask.blocked = False
            if self._sigterm_is_ours():
                before = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
                self._fork_mask.blocked = signal.SIGTERM not in before  # one the app blocked stays blocked
        except BaseException as exc:
            safety.internal_error("lifecycle.fork_mask", exc)

    def unblock_sigterm_later(self) -> None:
        """The SDK has registered its fork hooks (after ours, so they run after ours in the child): unblock SIGTERM
        after them. Our handler running inside one of them found the metric reader's new thread not started yet
        and its shutdown failed ('cannot join thread before it is started', seen in test_forks' 150 pools)."""
        self._unblock_in_fork_hook = False
        os.register_at_fork(after_in_child=self._unblock_sigterm)

    def _unblock_sigterm(self) -> None:
        try:
            if getattr(self._fork_mask, "blocked", False):
                self._fork_mask.blocked = False
                signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
        except BaseException as exc:
            safety.internal_error("lifecycle.fork_mask", exc)

    def _after_fork_in_child(self) -> None:
        try:
            parent = self.ctx.pid
            self.writer.after_fork_in_child()
            self.ctx.refresh_pid()
            self.finished = self._finishing = False
            self._signal_after_finish = 0
            self.exit_code = None
            self._finish_lock = threading.Lock()
            self._record_start(0.0, parent_pid=parent)
            mp_util = sys.modules.get("multiprocessing.util")
            if mp_util is not None:
                # multiprocessing children leave through os._exit (no atexit), but run its finalizers; the
                # registry is cleared when the child starts, so register from its after-fork callbacks.
                mp_util.register_after_fork(self, _finish_with_multiprocessing)
        except BaseException as exc:
            safety.internal_error("lifecycle.fork", exc)
        if (
            self._unblock_in_fork_hook
        ):  # last: a SIGTERM that came during the fork is handled now, by a ready child
            self._unblock_sigterm()

    # -- exit --------------------------------------------------------------------------------------
    def finish(self) -> None:
        """Flush everything once, within the exit time bound; safe to call from any exit path."""
        try:
            if not self._finish_lock.acquire(blocking=False) or self.finished:
                return
            self.finished = self._finishing = True
            budget = self.settings.exit_timeout_s
            self.shutdown_providers(budget / 3)
            self.writer.close(budget * 2 / 3, last_record=self._end_record)
        except BaseException as exc:
            safety.internal_error("lifecycle.finish", exc)
        self._finishing = False
        if self._signal_after_finish:
            _die_by(self._signal_after_finish)

    def _end_record(self) -> dict[str, Any]:
        return self.ctx.stamp_plain(
            {
                "event": "end",
                "time_ns": time.time_ns(),
                "host": self.ctx.host,
                "root": os.getpid() == self.settings.root_pid,
                "exit_code": self.exit_code if self.exit_code is not None else 0,
                "duration_ms": round((time.time_ns() - self.started_ns) / 1e6, 3),
                **counters(self.writer),
            }
        )

    def _stats_record(self) -> dict[str, Any]:
        """The live counters of a process still running, made by the spool thread (spool.STATS_INTERVAL_S)."""
        return self.ctx.stamp_plain(
            {
                "event": "stats",
                "time_ns": time.time_ns(),
                "host": self.ctx.host,
                "root": os.getpid() == self.settings.root_pid,
                "duration_ms": round((time.time_ns() - self.started_ns) / 1e6, 3),
                **counters(self.writer),
            }
        )


def counters(writer: SpoolWriter) -> dict[str, Any]:
    """What this process captured, skipped and lost so far, cumulative since it started (copies: each `dict()` of
    a plain dict is one step under the GIL, so an app thread counting meanwhile cannot break it)."""
    scrub = sys.modules.get("obsdash_instrumenters.scrub")  # not imported here: it loads with the encoder
    otlp = sys.modules.get("obsdash_instrumenters.otlp")  # loaded only with an OTLP endpoint
    return {
        "instrumentation": dict(instrumentations.status),
        "instrumentation_ms": dict(instrumentations.load_ms),
        "dropped": dict(writer.dropped),
        "written": dict(writer.written),
        "internal_errors": dict(safety.internal_errors),
        "redactions": dict(getattr(scrub, "redactions", None) or {}),
        "otlp": dict(getattr(otlp, "counters", None) or {}),
    }


def _die_by(signum: int) -> None:
    """End the process by `signum`'s default action, as it would have ended without us."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signum, signal.SIG_DFL)
    # (elsewhere our handler is still set: it runs on the main thread, finds the flush done and comes here)
    os.kill(os.getpid(), signum)


def _finish_with_multiprocessing(lifecycle: Lifecycle) -> None:
    import multiprocessing.util

    multiprocessing.util.Finalize(None, lifecycle.finish, exitpriority=-100)


def _exit_status(status: Any) -> int:
    if status is None:
        return 0
    if isinstance(status, int):
        return status & 0xFF  # what the parent sees: sys.exit(261) ends with status 5, sys.exit(-1) with 255
    return 1  # sys.exit("message") prints it and exits 1
