"""``python -m benchmarks``: every benchmark in one run, one table of ratios.

    python -m benchmarks [--threads 1] [--repeat 3] [--markdown benchmarks/RESULTS.md]
"""

import argparse
import sys
import time

from benchmarks import attention, format_table, kv_cache, machine, mha, part4, set_threads


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Run every benchmark and print one table of ratios.")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per contender (the median is kept)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default 1, as in the notebooks)")
    parser.add_argument("--markdown", metavar="FILE", help="also write the table and the machine to FILE")
    args = parser.parse_args(argv)
    set_threads(args.threads)
    facts = machine()
    print(", ".join(f"{k}: {v}" for k, v in facts.items()), flush=True)
    start = time.perf_counter()
    rows = []
    for module in (mha, attention, kv_cache, part4):
        rows += module.run(repeat=args.repeat)
        print(f"{module.__name__}: done", flush=True)
    elapsed = time.perf_counter() - start
    table = format_table(rows)
    print(table)
    print(f"total {elapsed:.0f} s")
    if args.markdown:
        details = [f"- {r.device}, {r.benchmark.split(':')[0]}, {r.case}: "
                   + ", ".join(f"{k} {v}" for k, v in r.detail.items()) for r in rows if r.detail]
        with open(args.markdown, "w") as out:
            out.write("# Benchmark results\n\n`python -m benchmarks" + (" " + " ".join(argv) if argv else "")
                      + "`: ratios, medians over repeats (ok / MISSED against the target).\n\n")
            out.write("\n".join(f"- {k}: {v}" for k, v in facts.items()) + f"\n- total run time: {elapsed:.0f} s\n\n")
            out.write(format_table(rows, markdown=True) + "\n\nMedians behind the ratios:\n\n")
            out.write("\n".join(dict.fromkeys(details)) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
