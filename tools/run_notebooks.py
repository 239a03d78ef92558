"""Re-execute notebooks in place, top to bottom, in a fresh kernel (as "Restart & Run All").

    python tools/run_notebooks.py                     # every notebook under notebooks/
    python tools/run_notebooks.py notebooks/01_*.ipynb

Committed outputs are always produced this way, never edited by hand. Prints each notebook's
run time, the figure the README's syllabus quotes.
"""

import argparse
import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent


def run(path: Path, timeout: int) -> float:
    notebook = nbformat.read(path, as_version=4)
    notebook.metadata["kernelspec"] = {"display_name": "Python 3 (ipykernel)", "language": "python",
                                       "name": "python3"}
    client = NotebookClient(notebook, timeout=timeout, kernel_name="python3", record_timing=False,
                            store_widget_state=True, resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    client.execute()
    elapsed = time.perf_counter() - start
    nbformat.write(notebook, path)
    return elapsed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    args = parser.parse_args(argv)
    # A backend set in the environment would replace the inline PNG figures.
    os.environ.pop("MPLBACKEND", None)
    os.environ["HELPERS_QUIET"] = "1"  # no progress lines in the saved outputs
    paths = args.notebooks or sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    for path in paths:
        elapsed = run(path.resolve(), args.timeout)
        print(f"{path.name}: {elapsed:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
