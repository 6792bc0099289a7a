"""Run every benchmark of pocketci-tui and print one table against SPEC section 6.

Usage (from the repository root)::

    .venv/bin/python tests/bench/run_all.py            # every benchmark, 3 repetitions
    .venv/bin/python tests/bench/run_all.py intake ui  # only some of them
    .venv/bin/python tests/bench/run_all.py --json out.json

Each module ``bench_<name>.py`` next to this file exposes ``run() -> list[dict]`` whose rows
carry ``name``, ``target``, ``value``, ``unit``, ``comparison`` and ``ok``. Figures are medians
measured side by side with their baselines in the same run; nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
import traceback
from pathlib import Path
from types import ModuleType
from typing import Any

HERE = Path(__file__).resolve().parent
ORDER = ["intake", "dispatch", "workspace", "ingest", "ui", "matching", "statuses"]


def _load(name: str) -> ModuleType:
    path = HERE / f"bench_{name}.py"
    spec = importlib.util.spec_from_file_location(f"bench_{name}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.3g}" if abs(value) < 100 else f"{value:,.0f}"
    return str(value)


def main(argv: list[str] | None = None) -> int:
    """Run the selected benchmarks and print the table; return 1 if any benchmark crashed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (default: {' '.join(ORDER)})")
    parser.add_argument("--json", type=Path, help="also write the rows to this file")
    args = parser.parse_args(argv)
    available = sorted(p.stem.removeprefix("bench_") for p in HERE.glob("bench_*.py"))
    names = args.names or [n for n in ORDER if n in available] + [
        n for n in available if n not in ORDER
    ]
    rows: list[dict[str, Any]] = []
    crashed = False
    for name in names:
        started = time.perf_counter()
        print(f"== {name} ...", file=sys.stderr, flush=True)
        try:
            module_rows = _load(name).run()
        except Exception:
            traceback.print_exc()
            crashed = True
            module_rows = [
                {"name": name, "target": "", "value": "crashed", "unit": "", "ok": False}
            ]
        for row in module_rows:
            row.setdefault("bench", name)
        rows.extend(module_rows)
        print(f"   {name} took {time.perf_counter() - started:.1f}s", file=sys.stderr)

    headers = ["benchmark", "figure", "target", "measured", "compared with", "ok"]
    table = [
        [
            str(r.get("bench", "")),
            str(r.get("name", "")),
            str(r.get("target", "")),
            f"{_fmt(r.get('value', ''))} {r.get('unit', '')}".strip(),
            str(r.get("comparison", "")),
            "yes" if r.get("ok") else "NO",
        ]
        for r in rows
    ]
    widths = [max(len(h), *(len(row[i]) for row in table)) for i, h in enumerate(headers)]
    line = " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    print(line)
    print("-+-".join("-" * w for w in widths))
    for row in table:
        print(" | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2, default=str))
    return 1 if crashed else 0


if __name__ == "__main__":
    raise SystemExit(main())
