"""Re-execute notebooks in place, top to bottom, in a fresh kernel (as "Restart & Run All").

    python tools/run_notebooks.py                     # every notebook under notebooks/
    python tools/run_notebooks.py notebooks/01_*.ipynb
    python tools/run_notebooks.py --check notebooks/04_*.ipynb   # run, but keep the committed file

Committed outputs are always produced this way, never edited by hand. Prints, for each notebook,
its wall-clock time (the figure the README's syllabus quotes), the CPU time of its kernel (which
other work on the machine does not inflate), and its claims (``helpers.claims``) with the
smallest margin: how far the weakest claim was from failing on this run.
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent


def _kernel_cpu_seconds(client) -> float | None:
    """User + system CPU time of the kernel process so far (Linux only; None elsewhere)."""
    try:
        pid = client.km.provisioner.process.pid
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (AttributeError, OSError, ValueError, IndexError):
        return None


def run(path: Path, timeout: int, save: bool = True) -> dict:
    notebook = nbformat.read(path, as_version=4)
    notebook.metadata["kernelspec"] = {"display_name": "Python 3 (ipykernel)", "language": "python",
                                       "name": "python3"}
    result = {"cpu": None}
    client = NotebookClient(notebook, timeout=timeout, kernel_name="python3", record_timing=False,
                            store_widget_state=True, resources={"metadata": {"path": str(path.parent)}})
    # Read after every cell: by the time the notebook-complete hook runs, the kernel is gone.
    client.on_cell_executed = lambda **_: result.update(cpu=_kernel_cpu_seconds(client))
    with tempfile.NamedTemporaryFile("r", suffix=".jsonl") as log:
        os.environ["HELPERS_CLAIMS_LOG"] = log.name
        start = time.perf_counter()
        client.execute()
        result["wall"] = time.perf_counter() - start
        result["claims"] = [json.loads(line) for line in log.read().splitlines()]
    if save:
        nbformat.write(notebook, path)
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    parser.add_argument("--check", action="store_true", help="run without saving the outputs")
    parser.add_argument("--claims", action="store_true", help="list every claim with its margin")
    args = parser.parse_args(argv)
    # A backend set in the environment would replace the inline PNG figures.
    os.environ.pop("MPLBACKEND", None)
    os.environ["HELPERS_QUIET"] = "1"  # no progress lines in the saved outputs
    paths = args.notebooks or sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    total = 0.0
    for path in paths:
        result = run(path.resolve(), args.timeout, save=not args.check)
        total += result["wall"]
        cpu = "?" if result["cpu"] is None else f"{result['cpu']:.1f} s"
        margins = [c["margin"] for c in result["claims"] if c["margin"] is not None]
        weakest = min(margins) if margins else None
        print(f"{path.name}: {result['wall']:.1f} s wall, {cpu} CPU, {len(result['claims'])} claims"
              + ("" if weakest is None else f", smallest margin {weakest:.4g}"), flush=True)
        if args.claims:
            for c in result["claims"]:
                margin = "" if c["margin"] is None else f" (margin {c['margin']:.4g})"
                print(f"    {'✓' if c['holds'] else '✗'} {c['claim']}{margin}")
    if len(paths) > 1:
        print(f"total: {total:.1f} s wall")
    return 0


if __name__ == "__main__":
    sys.exit(main())
