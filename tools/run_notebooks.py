"""Re-run walkthrough notebooks in place and save their outputs (what nbval compares against).

Usage: python tools/run_notebooks.py notebooks/01_quickstart.ipynb [...]

Widget state is not stored in the notebook (it would only show a stale panel), and the
run fails if any output holds something shaped like a sandbox key or a practice gateway's token.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

#: A sandbox key, or a practice gateway's token (notebooks/05_jupyterhub.ipynb never prints them; this checks).
SANDBOX_KEY = re.compile(
    r"sk-sandbox-[0-9a-f]{6,}|sandbox-azure-[0-9a-f]{6,}|practice-(?:admin|analyst|service)-[0-9a-f]{6,}"
)


def run(path: Path) -> None:
    import nbformat  # here, not at the top: the test of SANDBOX_KEY loads this file without them
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=120,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
        store_widget_state=False,
        record_timing=False,  # no execution times in the saved notebooks: a re-run changes only what it shows
    )
    client.execute()
    for cell in notebook.cells:
        cell.metadata.pop("execution", None)  # times of an earlier run
    notebook.metadata.pop("widgets", None)
    text = nbformat.writes(notebook)
    if SANDBOX_KEY.search(text):
        raise SystemExit(f"{path}: an output holds a sandbox key or a practice token; not saved.")
    path.write_text(text, encoding="utf-8")
    print(f"ran and saved {path}")


if __name__ == "__main__":
    for argument in sys.argv[1:]:
        run(Path(argument))
