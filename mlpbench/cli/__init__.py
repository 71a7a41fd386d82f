"""Command-line interface: argparse only; every subcommand calls one function of
:mod:`mlpbench.jobs`. Bad input is one line on stderr and exit code 2; SIGINT exits 130 and
SIGTERM 143, each with a message (results already written stay consistent)."""

from __future__ import annotations

import signal
import sys
from collections.abc import Sequence

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


def _on_sigterm(signum, frame) -> None:
    raise Terminated


def build_parser() -> Parser:
    parser = Parser(prog="mlpbench", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for module in COMMANDS:
        module.register(sub)
    return parser


def _version() -> str:
    from mlpbench import __version__

    return f"mlpbench {__version__}"


def _debug() -> bool:
    import os

    return os.environ.get("MLPBENCH_DEBUG", "").strip().lower() in ("1", "true", "yes", "on")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the process exit code (2 for bad input)."""
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        args = build_parser().parse_args(argv)
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
