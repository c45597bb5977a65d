"""Re-run walkthrough notebooks in place and save their outputs (what nbval compares against).

Usage: python tools/run_notebooks.py notebooks/01_quickstart.ipynb [...]

Widget state is not stored in the notebook (it would only show a stale panel), and the
run fails if any output holds something shaped like a sandbox key.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

SANDBOX_KEY = re.compile(r"sk-sandbox-[0-9a-f]{6,}|sandbox-azure-[0-9a-f]{6,}")


def run(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=120,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
        store_widget_state=False,
    )
    client.execute()
    notebook.metadata.pop("widgets", None)
    text = nbformat.writes(notebook)
    if SANDBOX_KEY.search(text):
        raise SystemExit(f"{path}: an output holds a sandbox key; not saved.")
    path.write_text(text, encoding="utf-8")
    print(f"ran and saved {path}")


if __name__ == "__main__":
    for argument in sys.argv[1:]:
        run(Path(argument))
