"""The ``llem-warmup`` command line.

Each subcommand lives in its own module of this package and exposes
``register(subparsers)``, which adds an `argparse` subparser whose ``func`` default is
called with the parsed arguments and returns an exit code.

`main` owns the exit-code convention (see `llenergymeasure.cli._common`): 0 success, 1
failure at run time, 2 bad input or usage, 130 Ctrl-C. No traceback reaches the user: an
error becomes one line on stderr (`-vv` logs the traceback too).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys
from collections.abc import Sequence

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every subcommand module registered."""
    from llenergymeasure import __version__

    parser = argparse.ArgumentParser(
        prog="llem-warmup",
        description="Warmup stopping rules for LLM inference: record, validate, replay, compare.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="More log output.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    import llenergymeasure.cli as pkg

    for mod in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        if mod.name.startswith("_"):
            continue
        module = importlib.import_module(f"{pkg.__name__}.{mod.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(sub)
    for subparser in sub.choices.values():  # -v after the subcommand too
        if not any("-v" in a.option_strings for a in subparser._actions):
            subparser.add_argument("-v", "--verbose", action="count",
                                   default=argparse.SUPPRESS, help="More log output.")
    return parser


def _error(message: str) -> None:
    print(f"llem-warmup: error: {message}", file=sys.stderr)


def _input_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean bad input (exit 2)."""
    errors: list[type[BaseException]] = [ValueError, KeyError, LookupError,
                                         FileNotFoundError, IsADirectoryError,
                                         NotADirectoryError, FileExistsError]
    try:
        import yaml

        errors.append(yaml.YAMLError)
    except ImportError:  # pragma: no cover - PyYAML is a dependency
        pass
    return tuple(errors)


def _message(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    if isinstance(exc, KeyError) and exc.args:
        text = str(exc.args[0])
    return "; ".join(" ".join(line.split()) for line in text.splitlines() if line.strip())


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``llem-warmup``; returns the exit code."""
    from llenergymeasure.cli._common import (
        EXIT_FAILURE,
        EXIT_INTERRUPTED,
        EXIT_USAGE,
    )

    try:
        parser = build_parser()
        args = parser.parse_args(argv)
    except KeyboardInterrupt:
        _error("interrupted")
        return EXIT_INTERRUPTED
    except SystemExit as exc:  # argparse: --help, --version (0) or a usage error (2)
        return int(exc.code or 0) if isinstance(exc.code, int) else EXIT_USAGE
    verbose = int(getattr(args, "verbose", 0) or 0)
    logging.basicConfig(
        level=logging.WARNING - 10 * min(verbose, 2),
        format="%(levelname)s %(name)s: %(message)s",
    )
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return EXIT_USAGE
    log = logging.getLogger("llenergymeasure.cli")
    try:
        return int(func(args) or 0)
    except KeyboardInterrupt:
        _error("interrupted (Ctrl-C); finished work was kept")
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # output piped into `head` and closed
        return EXIT_FAILURE
    except _input_errors() as exc:
        log.debug("traceback", exc_info=True)
        _error(_message(exc))
        return EXIT_USAGE
    except OSError as exc:
        log.debug("traceback", exc_info=True)
        _error(_message(exc))
        return EXIT_FAILURE
    except Exception as exc:
        log.debug("traceback", exc_info=True)
        _error(f"unexpected {type(exc).__name__}: {_message(exc)} (run with -vv for the "
               "traceback)")
        return EXIT_FAILURE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
