"""The ``mvm`` command: one sub-command per module in :mod:`mvm_core.commands`.

Each command module has a docstring (its help), ``add_arguments(parser)`` and ``run(args) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

# sub-command name -> module under mvm_core.commands (imported only when needed)
COMMANDS: dict[str, str] = {
    "train": "train",
    "sample": "sample",
    "eval": "evaluate",
    "inspect": "inspect",
    "embed": "embed",
    "plugins": "plugins",
    "list": "list",
}


DEBUG_ENV = "MVM_CORE_DEBUG"
DEBUG_HELP = f"show the full traceback of an error (or set {DEBUG_ENV}=1)"
# what a bad config, flag, name, file, checkpoint or missing optional package raises: reported in
# two lines, the message and how to see the traceback; other errors keep their traceback
INPUT_ERRORS = (ValueError, TypeError, LookupError, OSError, ImportError)


def _message(error: BaseException) -> str:
    text = error.args[0] if isinstance(error, KeyError) and error.args else str(error)
    return str(text).strip() or type(error).__name__


def _load(name: str):
    return importlib.import_module(f"mvm_core.commands.{COMMANDS[name]}")


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="mvm", description="Generative modeling by manifold matching over learned metrics."
    )
    parser.add_argument("--version", action="version", version=f"mvm-core {__version__}")
    parser.add_argument("--debug", action="store_true", default=False, help=DEBUG_HELP)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module = _load(name)
        doc = (module.__doc__ or "").strip()
        command = sub.add_parser(name, help=doc.splitlines()[0] if doc else None, description=doc)
        # after the command too (`mvm train --debug`); SUPPRESS keeps the top-level value otherwise
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=DEBUG_HELP)
        module.add_arguments(command)
        command.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    from .errors import USER_ERRORS

    debug = args.debug or os.environ.get(DEBUG_ENV, "") not in ("", "0")
    try:
        return int(args._run(args) or 0)
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stderr.close()
        return 0
    except USER_ERRORS as error:  # a bad config, run folder or checkpoint: one line naming the fix
        if debug:
            raise
        print(f"mvm {args.command}: {error}", file=sys.stderr)
        return 2
    except INPUT_ERRORS as error:  # bad flags, data, files, a missing optional package
        if debug:
            raise
        print(f"mvm {args.command}: error: {_message(error)}\n(`mvm --debug {args.command} ...` or"
              f" {DEBUG_ENV}=1 shows the traceback)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # outside training (which stops cleanly by itself): no traceback
        print(f"mvm {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
