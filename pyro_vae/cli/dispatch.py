"""``pyro-vae``'s entry point: parse, run the command, turn each error into its one-line
message and exit status.

Exit status: 0 on success, 2 for invalid arguments or configuration, 1 for other errors
(missing data, corrupt checkpoints, divergence, a run directory another pyro-vae process is
writing, a file that cannot be written), 128 + signal when interrupted.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Sequence

from ..app.console import tolerate_encoding
from ..app.escape import terminal_text
from ..app.interrupts import forced_exit, raise_interrupted
from ..app.options import parse_with_preset
from ..app.preflight import RUN_COMMANDS, require_run_dir, require_runs_dir, run_labels
from ..app.threads import apply_threads
from ..app.trust import vouching
from ..errors import ConfigError, PyroVAEError, TrainingInterrupted, first_line
from .parser import build_parser

DISTRIBUTED_COMMANDS = ("train", "evaluate")
"""The commands that run as several processes (under torchrun)."""


def _preflight(args: argparse.Namespace) -> None:
    """The checks that need no torch, made before the command imports it: the run
    directories named exist, ``compare`` names each run once."""
    if args.command in RUN_COMMANDS:
        require_run_dir(args.run_dir)
    elif args.command == "list":
        require_runs_dir(args.runs_dir)
    elif args.command == "compare":
        for path in args.run_dirs:
            require_run_dir(path)
        run_labels(args.run_dirs)
    elif getattr(args, "resume", None) is not None:
        require_run_dir(args.resume)


def _out_of_memory(exc: BaseException) -> bool:
    """An allocation failed: Python's MemoryError, or PyTorch's RuntimeError (its CPU
    allocator's "can't allocate memory", CUDA's "out of memory")."""
    if isinstance(exc, MemoryError):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and (
        "out of memory" in text or "can't allocate memory" in text
    )


def _under_torchrun() -> bool:
    """Started by torchrun with several processes (checked without importing torch)."""
    if "RANK" not in os.environ:
        return False
    from ..infer.distributed import launched_distributed

    return launched_distributed()


def _shown(exc: BaseException) -> str:
    """An error's message for the terminal: a run's name or configuration string quoted in
    it shows its control characters as escapes (the message's own line breaks stay)."""
    return terminal_text(exc, keep_newlines=True)


def main(argv: Sequence[str] | None = None) -> int:
    tolerate_encoding()  # no command fails on a name the terminal's encoding cannot show
    parser = build_parser()
    args, unknown = parse_with_preset(parser, argv)
    if unknown:  # told by the command's own parser, which knows its options
        getattr(args, "subparser", parser).error(f"unrecognized arguments: {' '.join(unknown)}")
    # SIGTERM (`kill`, a batch scheduler's time limit) stops a run as Ctrl-C does: the last
    # completed epoch is kept and the message says how to resume; exit status 128 + signal.
    # Both raise .interrupts.Interrupted (why not a bare KeyboardInterrupt: its docstring); an
    # ignored SIGINT (a job started in the background by a shell) stays ignored.
    terminated: list[int] = []
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

    def on_sigterm(signum: int, frame: object) -> None:
        terminated.append(signum)
        raise_interrupted(signum, frame)

    if in_main_thread:
        signal.signal(signal.SIGTERM, on_sigterm)
        if previous[signal.SIGINT] is signal.default_int_handler:
            signal.signal(signal.SIGINT, raise_interrupted)
    # a user's part that does not give way is stopped anyway: a second signal, or a grace
    # period after the first, ends the process with the same message and status (.interrupts)
    with forced_exit() as watchdog, vouching(getattr(args, "trust", [])):
        code = _dispatch(args, parser, terminated, in_main_thread, previous)
        if watchdog is not None:
            watchdog.reported()
    return code


def _dispatch(
    args: argparse.Namespace,
    parser: argparse.ArgumentParser,
    terminated: list[int],
    in_main_thread: bool,
    previous: dict[int, object],
) -> int:
    """Run the command; each error becomes its message and exit status."""
    try:
        if _under_torchrun() and args.command not in DISTRIBUTED_COMMANDS:
            raise ConfigError(
                f"{args.command!r} runs as one process; under torchrun with several processes "
                f"pyro-vae runs {' and '.join(DISTRIBUTED_COMMANDS)}"
            )
        _preflight(args)
        if hasattr(args, "threads"):  # the commands that compute
            apply_threads(args.threads)
        return args.func(args)
    except ConfigError as exc:
        parser.exit(2, f"pyro-vae: error: {_shown(exc)}\n")
    except TrainingInterrupted as exc:
        print(f"pyro-vae: {_shown(exc)}", file=sys.stderr)
        return 128 + (terminated[0] if terminated else signal.SIGINT)
    except PyroVAEError as exc:
        print(f"pyro-vae: error: {_shown(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("pyro-vae: interrupted", file=sys.stderr)
        return 128 + (terminated[0] if terminated else signal.SIGINT)
    except BrokenPipeError:  # the reader went away (`pyro-vae ... | head -1`): stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so that the exit's flush cannot fail again
        return 128 + signal.SIGPIPE
    except (MemoryError, RuntimeError) as exc:  # what the memory estimate could not foresee
        if not _out_of_memory(exc):
            raise
        print(
            f"pyro-vae: error: out of memory ({first_line(exc)[:200]}). Ask for less (fewer "
            "samples, chains, steps, images or a smaller model), or free memory, then run the "
            "command again.",
            file=sys.stderr,
        )
        return 1
    except OSError as exc:  # a full disk, a read-only directory, a path that is in the way
        where = f"{terminal_text(exc.filename)}: " if exc.filename else ""
        print(
            f"pyro-vae: error: {where}{exc.strerror or first_line(exc)}. Check that path (free "
            "space, permissions, a file or link in the way), then run the command again.",
            file=sys.stderr,
        )
        return 1
    finally:
        if in_main_thread:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        module = sys.modules.get("pyro_vae.infer.distributed")  # loaded only by those commands
        if module is not None:
            module.shutdown()  # after the message: a SIGTERM now just ends the process
    return 0
