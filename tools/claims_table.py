"""The table of every claim over seed offsets: pass rate and smallest margin per spread.

    python tools/run_notebooks.py --check --claims-log claims.jsonl                 # offset 0
    for k in 1 2 3 4; do python tools/run_notebooks.py --seed-offset $k --claims-log claims.jsonl; done
    python tools/claims_table.py claims.jsonl

For each claim (notebook and statement), prints how many offsets ran it, on how many it held,
its smallest margin and that margin as a fraction of the seed spread it read on the same run (a
claim that passes by less than a fraction of its own spread is one unlucky seed from failing).
Errors that stopped a notebook before its later claims ran are listed after the table.
"""

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("logs", nargs="+", type=Path)
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = parser.parse_args(argv)
    rows, errors, offsets = defaultdict(list), [], defaultdict(set)
    for log in args.logs:
        for line in log.read_text(encoding="utf-8").splitlines():
            entry = json.loads(line)
            offsets[entry["notebook"]].add(entry["offset"])
            if "error" in entry:
                errors.append(entry)
            else:
                rows[(entry["notebook"], entry["claim"])].append(entry)
    sep = " | " if args.markdown else "  "
    if args.markdown:
        print("| notebook | claim | held / ran | offsets run | smallest margin | margin / spread |")
        print("|---|---|---|---|---|---|")
    for (notebook, statement), entries in sorted(rows.items()):
        held = sum(e["holds"] for e in entries)
        margins = [(e["margin"], e.get("spread")) for e in entries if e["margin"] is not None]
        if margins:
            margin, spread = min(margins, key=lambda m: m[0])
            ratio = "-" if not spread else f"{margin / spread:.2f}"
            margin = f"{margin:.3g}"
        else:
            margin = ratio = "-"
        cells = [notebook[:2], statement, f"{held}/{len(entries)}", str(len(offsets[notebook])), margin, ratio]
        print(("| " + sep.join(cells) + " |") if args.markdown else sep.join(cells))
    for e in errors:
        print(f"error: {e['notebook']} offset {e['offset']}: {e['error'][:300]}")
    return 1 if errors or any(not e["holds"] for v in rows.values() for e in v) else 0


if __name__ == "__main__":
    sys.exit(main())
