"""Re-execute notebooks in place, top to bottom, in a fresh kernel (as "Restart & Run All").

    python tools/run_notebooks.py                     # every notebook under notebooks/
    python tools/run_notebooks.py notebooks/01_*.ipynb
    python tools/run_notebooks.py --check notebooks/04_*.ipynb   # run, but keep the committed file
    python tools/run_notebooks.py --check --seed-offset 1 --jobs 2   # every claim on other seeds

Committed outputs are always produced this way, never edited by hand. Prints, for each notebook,
its wall-clock time (the figure the README's syllabus quotes), the CPU time of its kernel (which
other work on the machine does not inflate), and its claims (``helpers.claims``) with the
smallest margin: how far the weakest claim was from failing on this run.

``--seed-offset k`` sets ``HELPERS_SEED_OFFSET=k`` for the kernels (``helpers.seeds``): every
seed of the series moves, so the printed numbers change and strict nbval does not apply. What
must not change is that every cell runs, every ``assert`` passes and every claim holds; the run
exits non-zero, naming the notebook and the cell, when one does not (``make test-seeds``).
``--claims-log FILE`` appends every claim of the run (notebook, offset, margin, spread) to FILE,
which ``tools/claims_table.py`` turns into the table of pass rates and margins.
"""

import argparse
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parent.parent


def _kernel_cpu_seconds(client) -> float | None:
    """User + system CPU time of the kernel process so far (Linux only; None elsewhere)."""
    try:
        pid = client.km.provisioner.process.pid
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (AttributeError, OSError, ValueError, IndexError):
        return None


def _failed_cell(notebook) -> str:
    """Where the first error of an executed notebook happened, with its last lines."""
    for index, cell in enumerate(notebook.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                return f"cell {index}: {output.get('ename')}: {output.get('evalue', '')[:2000]}"
    return "an error outside any cell"


def run(path: Path, timeout: int, save: bool = True, seed_offset: int | None = None) -> dict:
    """Execute one notebook; return its wall and CPU time, its claims and its error (or None)."""
    notebook = nbformat.read(path, as_version=4)
    notebook.metadata["kernelspec"] = {"display_name": "Python 3 (ipykernel)", "language": "python",
                                       "name": "python3"}
    if seed_offset is not None:
        os.environ["HELPERS_SEED_OFFSET"] = str(seed_offset)
    result = {"cpu": None, "error": None}
    client = NotebookClient(notebook, timeout=timeout, kernel_name="python3", record_timing=False,
                            store_widget_state=True, resources={"metadata": {"path": str(path.parent)}})
    # Read after every cell: by the time the notebook-complete hook runs, the kernel is gone.
    client.on_cell_executed = lambda **_: result.update(cpu=_kernel_cpu_seconds(client))
    with tempfile.NamedTemporaryFile("r", suffix=".jsonl") as log:
        os.environ["HELPERS_CLAIMS_LOG"] = log.name
        start = time.perf_counter()
        try:
            client.execute()
        except CellExecutionError:
            result["error"] = _failed_cell(notebook)
        result["wall"] = time.perf_counter() - start
        result["claims"] = [json.loads(line) for line in log.read().splitlines()]
    if save and result["error"] is None:
        nbformat.write(notebook, path)
    return result


def _report(path: Path, result: dict, list_claims: bool) -> str:
    cpu = "?" if result["cpu"] is None else f"{result['cpu']:.1f} s"
    margins = [c["margin"] for c in result["claims"] if c["margin"] is not None]
    weakest = min(margins) if margins else None
    lines = [f"{path.name}: {result['wall']:.1f} s wall, {cpu} CPU, {len(result['claims'])} claims"
             + ("" if weakest is None else f", smallest margin {weakest:.4g}")]
    if list_claims:
        for c in result["claims"]:
            margin = "" if c["margin"] is None else f" (margin {c['margin']:.4g})"
            lines.append(f"    {'✓' if c['holds'] else '✗'} {c['claim']}{margin}")
    if result["error"]:
        lines.append(f"    FAILED at {result['error']}")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    parser.add_argument("--check", action="store_true", help="run without saving the outputs")
    parser.add_argument("--claims", action="store_true", help="list every claim with its margin")
    parser.add_argument("--seed-offset", type=int, default=None,
                        help="run on other seeds (HELPERS_SEED_OFFSET); implies --check unless 0")
    parser.add_argument("--jobs", type=int, default=1, help="notebooks run at once (one thread each when > 1)")
    parser.add_argument("--claims-log", type=Path, default=None, help="append every claim to this JSONL file")
    args = parser.parse_args(argv)
    # A backend set in the environment would replace the inline PNG figures.
    os.environ.pop("MPLBACKEND", None)
    os.environ["HELPERS_QUIET"] = "1"  # no progress lines in the saved outputs
    if args.jobs > 1:
        os.environ.setdefault("HELPERS_THREADS", "1")
    save = not args.check and not args.seed_offset
    paths = [p.resolve() for p in args.notebooks] or sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = [pool.submit(run, path, args.timeout, save, args.seed_offset) for path in paths]
        results = []
        for path, future in zip(paths, futures, strict=True):
            result = future.result()
            results.append(result)
            print(_report(path, result, args.claims), flush=True)
            if args.claims_log:
                with open(args.claims_log, "a", encoding="utf-8") as f:
                    for c in result["claims"]:
                        f.write(json.dumps({"notebook": path.name, "offset": args.seed_offset or 0, **c}) + "\n")
                    if result["error"]:
                        f.write(json.dumps({"notebook": path.name, "offset": args.seed_offset or 0,
                                            "error": result["error"]}) + "\n")
    if len(paths) > 1:
        print(f"total: {sum(r['wall'] for r in results):.1f} s wall")
    failed = [path.name for path, r in zip(paths, results, strict=True) if r["error"]]
    if failed:
        print(f"FAILED: {', '.join(failed)}" + (f" (seed offset {args.seed_offset})" if args.seed_offset else ""))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
