"""Command-line interface: argparse only; every subcommand calls one function of
:mod:`mlpbench.jobs`. Bad input is one line on stderr and exit code 2; SIGINT exits 130 and
SIGTERM 143, each with a message (results already written stay consistent)."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import warnings
from collections.abc import Iterator, Sequence

from mlpbench import validate
from mlpbench.cli import basic, curvature, distributed, minima, studies
from mlpbench.cli.common import Parser
from mlpbench.errors import UsageError

EXIT_USAGE = 2
EXIT_INTERNAL = 1
#: modules registering subcommands, in the order of ``mlpbench --help``
COMMANDS = (basic, studies, minima, distributed, curvature)


class Terminated(BaseException):
    """SIGTERM arrived (raised from the signal handler so cleanup code runs). A
    ``BaseException``, like ``KeyboardInterrupt``, so that no ``except Exception`` (a guarded
    measurement) records it as a failed point and carries on."""


@contextlib.contextmanager
def quiet_warnings() -> Iterator[None]:
    """Warnings a user cannot act on are silenced: numpy's floating-point RuntimeWarnings
    (an inf or huge value in a table is stored and shown as such; a diverged run is a
    status), matplotlib's and seaborn's drawing warnings (a degenerate axis range), and
    torch's UserWarnings about its own internals. Any other warning is one line on stderr."""
    previous = warnings.showwarning

    def one_line(message, category, filename, lineno, file=None, line=None) -> None:
        text = (str(message).splitlines() or [""])[0][:300]
        print(f"mlpbench: warning: {category.__name__}: {text}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.simplefilter("ignore", RuntimeWarning)
        for module in ("matplotlib", "seaborn", "torch", "pandas"):
            warnings.filterwarnings("ignore", module=module)
        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.showwarning = one_line
        try:
            yield
        finally:
            warnings.showwarning = previous


def _on_sigterm(signum, frame) -> None:
    raise Terminated


def build_parser() -> Parser:
    parser = Parser(prog="mlpbench", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for module in COMMANDS:
        module.register(sub)
    for command in sub.choices.values():  # every study that resumes may resume an upgrade
        if "--resume" in command._option_string_actions:
            command.add_argument(
                "--allow-upgrade", action="store_true",
                help="with --resume: continue results written by another mlpbench commit or "
                     "results format (recorded in the metadata)")
    return parser


def _version() -> str:
    from mlpbench import __version__

    return f"mlpbench {__version__}"


@contextlib.contextmanager
def _upgrade_allowed(allowed: bool) -> Iterator[None]:
    """``--allow-upgrade`` for the command's duration (read by mlpbench.results.RunFolder)."""
    old = os.environ.get("MLPBENCH_ALLOW_UPGRADE")
    if allowed:
        os.environ["MLPBENCH_ALLOW_UPGRADE"] = "1"
    try:
        yield
    finally:
        if allowed and old is None:
            os.environ.pop("MLPBENCH_ALLOW_UPGRADE", None)
        elif allowed:
            os.environ["MLPBENCH_ALLOW_UPGRADE"] = old


def _debug() -> bool:
    return os.environ.get("MLPBENCH_DEBUG", "").strip().lower() in ("1", "true", "yes", "on")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the process exit code (2 for bad input)."""
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        argv = list(sys.argv[1:] if argv is None else argv)
        if any("\x00" in a for a in argv):  # no shell passes one; open() would raise
            raise UsageError("an argument contains a NUL byte")
        args = build_parser().parse_args(argv)
        validate.check_environment()
        with quiet_warnings(), _upgrade_allowed(getattr(args, "allow_upgrade", False)):
            return int(args.func(args) or 0)
    except UsageError as exc:
        print(f"mlpbench: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:  # a full disk, a read-only folder... never a traceback
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        print(f"mlpbench: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("mlpbench: interrupted; results written so far are kept (--resume continues)",
              file=sys.stderr)
        return 130
    except Terminated:
        print("mlpbench: terminated; results written so far are kept (--resume continues)",
              file=sys.stderr)
        return 143
    except Exception as exc:  # noqa: BLE001 - a bug: one line, the traceback on request
        if _debug():
            raise
        first = (str(exc).splitlines() or [""])[0][:300]
        print(f"mlpbench: internal error: {type(exc).__name__}: {first} (results written so "
              "far are kept; MLPBENCH_DEBUG=1 shows the traceback)", file=sys.stderr)
        return EXIT_INTERNAL
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
