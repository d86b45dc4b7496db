"""Ctrl-C and SIGTERM always stop the command, even when a user's part does not give way.

The first SIGINT or SIGTERM raises :class:`KeyboardInterrupt` in the main thread, as usual: the
command stops at once, keeps the last completed epoch's checkpoint and says how to continue.
Code that never returns to the interpreter, or that swallows the exception (a part looping
``while True: try: ... except BaseException: pass``), would keep it running. So a watchdog
thread, woken by the signal itself (:func:`signal.set_wakeup_fd`, written by the C-level
handler whatever the main thread is doing), ends the process with the usual message and exit
status 128 + signal when a second signal arrives or :data:`GRACE_SECONDS` pass without the
command having ended. Every file pyro-vae writes is replaced atomically, so the last checkpoint
is intact at any moment the process ends.

Nothing here imports torch.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import threading
import time
from collections.abc import Callable, Iterator

GRACE_SECONDS = 5.0
"""How long the command has, after the first signal, to stop by itself."""


class Interrupted(KeyboardInterrupt):
    """What Ctrl-C and SIGTERM raise while a command runs: a :class:`KeyboardInterrupt`, so
    every handler of Ctrl-C handles it, but of its own class. CPython 3.11 marks a bare
    KeyboardInterrupt that leaves code run by ``exec`` of a string (dataclasses, torch.fx and
    torch.compile run the code they generate that way) as unhandled even when it is caught
    later, and ``python -m pyro_vae`` then ends by SIGINT instead of with the exit status the
    command chose (128 + signal); it checks the exact class, so a subclass escapes the mark."""


def raise_interrupted(signum: int, frame: object) -> None:
    """A signal handler: stop the command as Ctrl-C does (with :class:`Interrupted`)."""
    raise Interrupted


_describe: list[Callable[[], str]] = []
"""What the command would say if interrupted now (innermost last), e.g. the epoch the run's
checkpoint holds and the command that continues it."""


@contextlib.contextmanager
def describing(describe: Callable[[], str]) -> Iterator[None]:
    """While active, a forced stop prints ``pyro-vae: {describe()}``."""
    _describe.append(describe)
    try:
        yield
    finally:
        _describe.remove(describe)


def interrupted_message() -> str:
    if _describe:
        try:
            return _describe[-1]()
        except Exception:  # never fail while stopping
            pass
    return "interrupted"


@contextlib.contextmanager
def deferred_interrupts() -> Iterator[None]:
    """Run a short block whole: a SIGINT or SIGTERM arriving inside it takes effect when it
    ends (the previous handler runs then), so files written together (a checkpoint and the
    metrics of its epoch) are never left one without the other. Main thread only; elsewhere
    the block just runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    stopping = (signal.SIGINT, signal.SIGTERM)
    previous = {s: signal.getsignal(s) for s in stopping}
    for s in stopping:
        signal.signal(s, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if caught:
        handler = previous[caught[0]]
        if callable(handler):
            handler(caught[0], None)
        elif handler == signal.SIG_DFL and caught[0] == signal.SIGINT:
            raise Interrupted
        elif handler == signal.SIG_DFL:
            signal.raise_signal(caught[0])


class Watchdog:
    """The thread that forces the exit; :meth:`reported` once the command printed its own
    message (the forced exit then adds none)."""

    def __init__(self, grace: float = GRACE_SECONDS) -> None:
        self.grace = grace
        self.done = False
        self._read, self._write = os.pipe()
        os.set_blocking(self._write, False)
        self._thread = threading.Thread(target=self._watch, name="pyro-vae-interrupt", daemon=True)

    def reported(self) -> None:
        self.done = True

    def _signals(self, timeout: float | None) -> list[int] | None:
        """The stopping signals that arrive within ``timeout`` (None: wait for one); None
        once the command has ended (the pipe closed)."""
        ready, _, _ = select.select([self._read], [], [], timeout)
        if not ready:
            return []
        data = os.read(self._read, 64)
        if not data:
            return None
        return [s for s in data if s in (signal.SIGINT, signal.SIGTERM)]

    def _watch(self) -> None:
        try:
            first: list[int] = []
            while not first:
                got = self._signals(None)
                if got is None:
                    return  # the command ended: no signal came
                first = got
            if len(first) < 2:
                deadline = time.monotonic() + self.grace
                while (left := deadline - time.monotonic()) > 0:
                    got = self._signals(left)
                    if got is None:
                        return  # the command ended within the grace period
                    if got:
                        first += got
                        break
            self._force(first[0], second=len(first) > 1)
        finally:
            os.close(self._read)

    def _force(self, signum: int, second: bool) -> None:
        if not self.done:
            why = (
                "forced by a second signal"
                if second
                else f"forced: the running code had not stopped {self.grace:g} s after the signal"
            )
            text = f"pyro-vae: {interrupted_message()} ({why})\n"
            with contextlib.suppress(OSError):
                os.write(2, text.encode("utf-8", "replace"))
        os._exit(128 + signum)

    @contextlib.contextmanager
    def watching(self) -> Iterator[Watchdog]:
        """Route SIGINT and SIGTERM to the watchdog for the block (main thread only)."""
        previous = signal.set_wakeup_fd(self._write, warn_on_full_buffer=False)
        self._thread.start()
        try:
            yield self
        finally:
            signal.set_wakeup_fd(previous)
            os.close(self._write)  # the thread reads the end of the pipe and returns


@contextlib.contextmanager
def forced_exit(grace: float = GRACE_SECONDS) -> Iterator[Watchdog | None]:
    """A :class:`Watchdog` for the block, in the main thread (elsewhere signals do not
    arrive: None)."""
    if threading.current_thread() is not threading.main_thread():
        yield None
        return
    with Watchdog(grace).watching() as dog:
        yield dog
