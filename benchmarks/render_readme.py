"""Copy the latest result tables into the READMEs (no number in a results block is typed by hand).

Every block ``<!-- results:NAME -->`` ... ``<!-- /results -->`` of the README is replaced by
``results/NAME.md`` without its first heading line and without what follows a ``<!-- details -->``
line (per-seed tables), or by a note that the benchmark has not been run.

    .venv/bin/python benchmarks/render_readme.py [--check]     # README.md and benchmarks/README.md
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DETAILS = "<!-- details -->"
BLOCK = re.compile(r"(<!-- results:(?P<name>[\w.\-]+) -->\n)(?P<body>.*?)(<!-- /results -->)", re.S)


def body_of(results: Path, name: str) -> str:
    path = results / f"{name}.md"
    if not path.exists():
        return f"_Not run yet: `{name}.md` is missing from `benchmarks/results/`._\n"
    text = path.read_text()
    text = text.split(DETAILS)[0] if DETAILS in text else text
    lines = text.splitlines()
    if lines and lines[0].startswith("# "):
        lines = lines[1:]
    while lines and not lines[0].strip():
        lines = lines[1:]
    return "\n".join(lines).rstrip() + "\n"


def render(readme: Path, results: Path) -> str:
    text = readme.read_text()
    return BLOCK.sub(lambda m: m.group(1) + body_of(results, m.group("name")) + m.group(4), text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readme", type=Path, nargs="+", default=[HERE.parent / "README.md", HERE / "README.md"])
    parser.add_argument("--results", type=Path, default=HERE / "results")
    parser.add_argument("--check", action="store_true", help="exit 1 if the README is out of date")
    args = parser.parse_args(argv)
    stale = []
    for readme in args.readme:
        new = render(readme, args.results)
        if new != readme.read_text():
            stale.append(readme)
            if not args.check:
                readme.write_text(new)
    if args.check and stale:
        print("out of date (run benchmarks/render_readme.py):", *map(str, stale))
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
