"""Send SIGTERM again when obsdash's handler (lifecycle.py) did not get to run it.

CPython runs a Python signal handler on the main thread, between bytecodes. A SIGTERM that lands in the moment
before the main thread blocks in a C call which only a signal would end — a multiprocessing Pool worker about to
wait for its queue's lock — is noted and never handled: the worker sleeps for ever and `with Pool(): ...` hangs in
terminate() (strace: the signal arrived in user space, the handler's C part returned, nothing ran). Bare Python,
whose default action kills at once, cannot hang there; with any Python-level SIGTERM handler it does: a two-line
handler hung 4 runs in 10 of 200 pools each. So installing ours brings this remedy. CPython's C handler also writes
the signal's number to the wakeup fd: we set one (only where the app has none, hidden from the app's own
`signal.set_wakeup_fd` calls), and a daemon thread reading it sends SIGTERM again to the main thread, every
GRACE_S, until our handler has begun: the new signal interrupts the blocking call. An app that sets its own wakeup
fd (an asyncio loop with signal handlers, trio) wakes on signals by itself.
"""

from __future__ import annotations

import os
import signal
import threading
import time

from obsdash_instrumenters.safety import internal_error

TYPE_CHECKING = False  # `typing` costs ~10 ms at start-up; mypy still reads the block below
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

GRACE_S = 0.2
"""How long the main thread has to begin the handler before the signal is sent again."""
RESENDS = 25


class SigtermWatch:
    """The wakeup pipe and the thread that watches it, for one process."""

    def __init__(self, handled: Callable[[], bool], ours: Callable[[], bool]) -> None:
        self._handled = handled  # True once our handler has begun (or the process is exiting anyway)
        self._ours = ours  # True while our handler is the SIGTERM handler
        self._real = signal.set_wakeup_fd
        self._read_fd = self._write_fd = -1
        self._pid = 0  # the process the pipe belongs to: a forked child must never wake its parent's watcher

    def install(self) -> None:
        """Set our wakeup fd and start the watcher; nothing when the app has one (call on the main thread)."""
        read_fd, write_fd = os.pipe()
        os.set_blocking(write_fd, False)  # the C handler must never block
        previous = self._real(write_fd, warn_on_full_buffer=False)
        if previous != -1:
            self._real(previous)  # the app's: leave it
            os.close(read_fd)
            os.close(write_fd)
            return
        self._read_fd, self._write_fd, self._pid = read_fd, write_fd, os.getpid()
        threading.Thread(target=self._watch, args=(read_fd,), name="obsdash-sigterm", daemon=True).start()
        if signal.set_wakeup_fd is self._real:  # once: the patch and the fork hook are inherited by children
            signal.set_wakeup_fd = self._hiding()  # type: ignore[assignment]
            os.register_at_fork(after_in_child=self._after_fork_in_child)

    def _mine(self) -> int:
        return self._write_fd if self._pid == os.getpid() else -1

    def _hiding(self) -> Any:
        """`signal.set_wakeup_fd` as the app knows it: no wakeup fd unless it set one; clearing its own puts ours
        back (a multiprocessing forkserver child clears its parent's: it gets one of ours)."""
        real = self._real

        def set_wakeup_fd(fd: int, /, *, warn_on_full_buffer: bool = True) -> int:
            mine = self._mine()
            if fd == -1 and mine != -1:
                previous: int = real(mine, warn_on_full_buffer=False)
            else:
                previous = real(fd, warn_on_full_buffer=warn_on_full_buffer)
                if fd == -1:
                    try:
                        self.install()
                    except BaseException as exc:
                        internal_error("sigwatch.install", exc)
            return -1 if previous == mine else previous

        set_wakeup_fd.__wrapped__ = real  # type: ignore[attr-defined]
        set_wakeup_fd.__doc__ = real.__doc__
        return set_wakeup_fd

    def _after_fork_in_child(self) -> None:
        """The watcher thread is gone and the pipe is the parent's: our own pipe and thread, if the parent's was
        the wakeup fd. (lifecycle.py holds SIGTERM back across the fork, so no SIGTERM of the child can reach the
        parent's pipe before this runs.)"""
        inherited = (self._read_fd, self._write_fd)
        self._read_fd = self._write_fd = -1
        if inherited[1] == -1:
            return
        try:
            current = self._real(-1)  # never the parent's pipe again
            if current != inherited[1]:
                self._real(current)  # the app's, or none: as it was
            elif threading.current_thread() is threading.main_thread():
                self.install()
            for fd in inherited:
                os.close(fd)
        except BaseException as exc:
            internal_error("sigwatch.fork", exc)

    def _watch(self, read_fd: int) -> None:
        while True:
            try:
                data = os.read(read_fd, 512)
            except OSError:
                return
            if not data:
                return
            if signal.SIGTERM in data:
                try:
                    self._redeliver()
                except BaseException as exc:
                    internal_error("sigwatch.redeliver", exc)

    def _redeliver(self) -> None:
        main = threading.main_thread().ident
        for _ in range(RESENDS):
            deadline = time.monotonic() + GRACE_S
            while time.monotonic() < deadline:
                if self._handled() or not self._ours():
                    return
                time.sleep(0.01)
            if main is not None:
                signal.pthread_kill(main, signal.SIGTERM)
