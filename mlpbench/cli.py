"""Command-line interface: each subcommand parses flags and calls one public function."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from mlpbench.errors import UsageError

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit code 2."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}")


def _print_json(obj: Any) -> None:
    json.dump(obj, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def _spec_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--input-dim", "-d", type=int, default=100, help="input dimension d")
    p.add_argument("--width", "-w", type=int, default=1000, help="hidden width n_h")
    p.add_argument("--depth", "-L", type=int, default=10, help="number of hidden layers L")
    p.add_argument("--output-dim", type=int, default=1)
    p.add_argument("--activation", default="relu")
    p.add_argument("--no-bias", action="store_true")


def _spec_from(args: argparse.Namespace):
    from mlpbench.spec import MLPSpec

    return MLPSpec(args.input_dim, args.width, args.depth, args.output_dim, args.activation,
                   bias=not args.no_bias)


def cmd_params(args: argparse.Namespace) -> int:
    from mlpbench.spec import dtype_bytes
    from mlpbench.summary import render_summary, spec_summary

    dtype_bytes(args.dtype)
    summary = spec_summary(_spec_from(args), dtype=args.dtype, batch=args.batch,
                           lbfgs_history=args.lbfgs_history)
    _print_json(summary) if args.json else print(render_summary(summary))
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from mlpbench.devices import describe_hardware

    info = describe_hardware()
    if args.json:
        _print_json(info)
    else:
        for key, value in info.items():
            print(f"{key:<18} {value}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="mlpbench", description=__doc__)
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("params", help="parameter count, FLOPs and memory model of an MLP")
    _spec_args(p)
    p.add_argument("--dtype", default="fp32")
    p.add_argument("--batch", type=int, default=1, help="batch size for activation memory")
    p.add_argument("--lbfgs-history", type=int, default=10)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_params)

    p = sub.add_parser("info", help="describe this machine's hardware and software")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_info)

    for register in _EXTRA_COMMANDS:
        register(sub)
    return parser


def _version() -> str:
    from mlpbench import __version__

    return f"mlpbench {__version__}"


#: subcommands defined in other modules register themselves here (see ``_load_commands``)
_EXTRA_COMMANDS: list[Callable[[Any], None]] = []


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the process exit code (2 for bad input)."""
    try:
        args = build_parser().parse_args(argv)
        return int(args.func(args) or 0)
    except UsageError as exc:
        print(f"mlpbench: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("mlpbench: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
