"""List plugins: name, version, hooks, what each registers, and the ones that failed to load.

Installed plugins are shown by default, built-ins with --all. A plugin that failed is listed with
its original error instead of breaking the command; --check turns failures into exit status 1
(useful in a plugin's CI to check that its entry point loads).
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings

_SHOWN_NAMES = 6


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--all", action="store_true", help="include mvm-core's built-in plugins")
    parser.add_argument("--json", action="store_true", help="print a JSON list instead of text")
    parser.add_argument(
        "-v", "--verbose", action="store_true",
        help="show every registered name and the traceback of each failure",
    )
    parser.add_argument(
        "--check", action="store_true",
        help="exit with status 1 when a plugin failed or implements unknown hooks",
    )


def _names(names: tuple[str, ...], verbose: bool) -> str:
    if verbose or len(names) <= _SHOWN_NAMES:
        return ", ".join(names)
    return f"{', '.join(names[:_SHOWN_NAMES])}, ... ({len(names)} in all; -v shows them)"


def run(args: argparse.Namespace) -> int:
    from ..plugins import PluginWarning, list_plugins

    with warnings.catch_warnings():
        # the listing reports failures itself; the load-time warnings would repeat them
        warnings.simplefilter("ignore", PluginWarning)
        infos = list_plugins()
    shown = [info for info in infos if args.all or not info.builtin]
    problems = [info for info in infos if info.status == "failed" or info.warnings]
    if args.json:
        print(json.dumps([info.as_dict() for info in shown], indent=2))
    elif not shown:
        builtins = sum(info.builtin for info in infos)
        print(f"no installed plugins ({builtins} built-in; show them with --all)")
    else:
        for info in shown:
            origin = f"{info.distribution} {info.version}" if info.distribution else "registered from code"
            if info.entry_point:
                origin += f", entry point '{info.entry_point}'"
            status = info.status.upper() if info.status == "failed" else info.status
            print(f"{info.name}  [{status}]  ({origin})")
            if info.hooks:
                print(f"  hooks: {', '.join(info.hooks)}")
            for kind, names in info.registered.items():
                print(f"  {kind}: {_names(names, args.verbose)}")
            if info.note:
                print(f"  {info.status}: {info.note}")
            if info.error:
                print(f"  error: {info.error}")
                if args.verbose and info.traceback:
                    print("  " + info.traceback.rstrip().replace("\n", "\n  "))
            for message in info.warnings:
                print(f"  warning: {message}")
    if problems and not args.json:
        names = ", ".join(info.name for info in problems)
        print(f"{len(problems)} plugin(s) with problems: {names}", file=sys.stderr)
    return 1 if args.check and problems else 0
