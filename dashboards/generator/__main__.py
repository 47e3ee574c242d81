"""python -m dashboards.generator [--check]: write dashboards/*.json, or with --check only
report (exit 1) the files that differ from what the code builds."""

from __future__ import annotations

import argparse
import sys

from dashboards.generator import DASHBOARDS_DIR, build_all


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m dashboards.generator")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 on a difference")
    args = parser.parse_args()
    stale = []
    for name, text in build_all().items():
        path = DASHBOARDS_DIR / name
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        stale.append(name)
        if not args.check:
            path.write_text(text, encoding="utf-8")
    verb = "differ" if args.check else "written"
    print(f"{verb}: {', '.join(stale)}" if stale else "dashboards up to date")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
