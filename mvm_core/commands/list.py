"""List registered names of one kind, e.g. `mvm list metric_losses 'pml:*Triplet*'`.

Without a kind, shows every kind and how many names it has. Patterns use shell wildcards and
ignore case; a plugin's catalogue (such as every timm model) is listed when the pattern names its
prefix: `mvm list backbones 'timm:resnet*'`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import warnings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..registry import KINDS

    parser.add_argument("kind", nargs="?", help=f"one of: {', '.join(KINDS)}")
    parser.add_argument("pattern", nargs="?", default="*", help="shell wildcard (default '*')")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _table(rows: list[tuple[str, str, str]]) -> None:
    """Aligned columns; descriptions are cut to the terminal width (never when piped)."""
    name_w = max(len(r[0]) for r in rows)
    plugin_w = max(len(r[1]) for r in rows)
    room = None
    if sys.stdout.isatty():
        room = max(20, shutil.get_terminal_size().columns - name_w - plugin_w - 4)
    for name, plugin, description in rows:
        if room is not None and len(description) > room:
            description = description[: room - 3] + "..."
        print(f"{name:<{name_w}}  {plugin:<{plugin_w}}  {description}".rstrip())


def run(args: argparse.Namespace) -> int:
    from ..plugins import PluginWarning
    from ..registry import KINDS, RegistryError, get_registry, kind_of

    with warnings.catch_warnings():
        warnings.simplefilter("default", PluginWarning)
        if args.kind is None:
            counts = {kind: len(get_registry(kind)) for kind in KINDS}
            if args.json:
                print(json.dumps(counts, indent=2))
            else:
                _table([(kind, str(n), "") for kind, n in counts.items()])
            return 0
        try:
            kind = kind_of(args.kind)
            entries = get_registry(kind).entries(args.pattern)
        except RegistryError as error:
            print(f"mvm list: {error}", file=sys.stderr)
            return 2
    if args.json:
        print(json.dumps([
            {"name": e.name, "plugin": e.plugin, "description": e.description,
             "overrides": list(e.overrides), "namespace": e.namespace}
            for e in entries
        ], indent=2))
        return 0 if entries else 1
    if not entries:
        print(f"no {kind} match {args.pattern!r}; `mvm list {kind}` shows them all.", file=sys.stderr)
        return 1
    rows = []
    for e in entries:
        description = e.description
        if e.namespace:
            description += f" (list them: mvm list {kind} '{e.prefix}:*')"
        if e.overrides:
            description += f" [overrides {', '.join(e.overrides)}]"
        rows.append((e.name, e.plugin, description))
    _table(rows)
    return 0
