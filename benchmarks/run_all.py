"""Run every benchmark module and print one table of ratios measured in the same run.

Each ``benchmarks/bench_*.py`` module exposes ``run(quick: bool = False) -> list[dict]``;
a row has keys ``benchmark``, ``case``, ``ours``, ``reference``, ``unit``, ``ratio``
(how many times better ours is than the reference; > 1 is better) and ``goal`` (text).

Usage: ``python -m benchmarks.run_all [--quick] [--only NAME ...] [--json out.json]``.
"""
from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import sys
from pathlib import Path


def discover() -> list[str]:
    """Names of the benchmark modules, sorted."""
    here = Path(__file__).parent
    return sorted(m.name for m in pkgutil.iter_modules([str(here)]) if m.name.startswith("bench_"))


def format_table(rows: list[dict]) -> str:
    """Render rows as a Markdown table."""
    head = "| benchmark | case | ours | reference | unit | ratio | goal |\n|---|---|---|---|---|---|---|"
    lines = [head]
    for r in rows:
        ratio = r.get("ratio")
        ratio_s = f"{ratio:.1f}×" if isinstance(ratio, (int, float)) else str(ratio or "")
        lines.append(
            f"| {r['benchmark']} | {r['case']} | {_fmt(r.get('ours'))} | {_fmt(r.get('reference'))} "
            f"| {r.get('unit', '')} | {ratio_s} | {r.get('goal', '')} |"
        )
    return "\n".join(lines)


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "" if v is None else str(v)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller problem sizes")
    parser.add_argument("--only", nargs="*", default=None, help="module names, e.g. bench_ocsvm")
    parser.add_argument("--json", default=None, help="also write the rows as JSON here")
    args = parser.parse_args(argv)
    names = args.only or discover()
    rows: list[dict] = []
    for name in names:
        module = importlib.import_module(f"benchmarks.{name}")
        print(f"running {name} ...", file=sys.stderr, flush=True)
        rows.extend(module.run(quick=args.quick))
    print(format_table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
