"""`make contracts`, first step: openapi.yaml's ``Tz`` parameter as an ``enum`` of the pinned tzdata's zones.

The list is ``p1_contracts.zones.names()`` (the zones of the tzdata package pinned in libs/contracts), sorted,
written as a YAML flow sequence in place of the ``enum:`` of the ``Tz`` parameter's schema, after a comment
naming the tzdata version. Nothing else of the file changes. ``--check`` writes nothing and exits 1 when the
file is not what this would write (the contract tests run it).
"""

import argparse
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

import yaml

from p1_contracts import zones

SPEC = Path(__file__).resolve().parents[1] / "openapi.yaml"
INDENT = " " * 8  # the keys of components.parameters.Tz.schema
WIDTH = 110
COMMENT = f"{INDENT}# Written by `make contracts` (scripts/tz_enum.py) from the pinned tzdata"


class SpecShapeError(Exception):
    """openapi.yaml has no ``enum:`` in the ``Tz`` parameter's schema where this script looks for it."""


def enum_lines(names: list[str]) -> list[str]:
    """``enum: [a, b, …]`` wrapped at WIDTH, continuation lines under the first name."""
    head = f"{INDENT}enum: ["
    lines, line = [], head
    for i, name in enumerate(names):
        item = name + ("]" if i == len(names) - 1 else ",")
        if len(line) + len(item) + 1 > WIDTH and line.strip() not in ("enum: [", ""):
            lines.append(line.rstrip())
            line = " " * len(head)
        line += item if line.endswith(("[", " ")) else " " + item
    lines.append(line)
    return lines


def _enum_span(lines: list[str]) -> tuple[int, int]:
    """[first, end) of the generated lines (comment and enum) inside components.parameters.Tz.schema."""
    try:
        tz = lines.index("    Tz:", lines.index("  parameters:"))
        schema = lines.index("      schema:", tz)
        first = next(i for i in range(schema, len(lines)) if lines[i].startswith(f"{INDENT}enum:"))
    except (ValueError, StopIteration):
        raise SpecShapeError("openapi.yaml: no `enum:` under components.parameters.Tz.schema") from None
    if lines[first - 1].startswith(COMMENT):
        first -= 1
    end = next(i for i in range(first, len(lines)) if lines[i].rstrip().endswith("]")) + 1
    return first, end


def rewrite(text: str) -> str:
    names = sorted(zones.names())
    lines = text.split("\n")
    first, end = _enum_span(lines)
    new = [f"{COMMENT} {version('tzdata')}; do not edit.", *enum_lines(names)]
    out = "\n".join(lines[:first] + new + lines[end:])
    loaded: Any = yaml.safe_load(out)
    # Plain YAML scalars: a name that YAML would read as something else than itself must not slip through.
    if loaded["components"]["parameters"]["Tz"]["schema"]["enum"] != names:
        raise SpecShapeError("the written enum does not read back as the zone names")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when openapi.yaml is not current")
    args = parser.parse_args()
    text = SPEC.read_text(encoding="utf-8")
    fresh = rewrite(text)
    if args.check:
        if fresh != text:
            print("openapi.yaml: the Tz enum is not the pinned tzdata's zones; run `make contracts`")
            return 1
        return 0
    SPEC.write_text(fresh, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
