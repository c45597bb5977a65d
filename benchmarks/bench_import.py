"""Import: a fresh ``python -c "import ai_admin_widgets"`` against a fresh ``python -c "import ipywidgets"``.

Whole-process wall times (interpreter start included, as the admin's first cell pays
it in a new kernel), interleaved, after one untimed run of each so that bytecode is
compiled. A bare ``python -c "pass"`` is timed alongside, for the floor.
"""

from __future__ import annotations

import subprocess
import sys

from common import emit, figure, interleaved, isolate_environment, milliseconds

RUNS = 11
TARGET = 1.05


def python(code: str) -> None:
    """Run ``code`` in a new interpreter (the benchmark's own venv); fail loudly if it fails."""
    subprocess.run([sys.executable, "-c", code], check=True)


def main() -> None:
    isolate_environment()
    times = interleaved(
        {
            "ai_admin_widgets": lambda: python("import ai_admin_widgets"),
            "ipywidgets": lambda: python("import ipywidgets"),
            "nothing": lambda: python("pass"),
        },
        runs=RUNS,
    )
    ours = figure(
        "import",
        ours='python -c "import ai_admin_widgets" (fresh process)',
        measured=times["ai_admin_widgets"],
        baseline='python -c "import ipywidgets" (fresh process)',
        baseline_measured=times["ipywidgets"],
        target=f"ratio ≤ {TARGET}",
        at_most=TARGET,
        how=(
            f"{RUNS} runs of each, interleaved, after one untimed run each. For scale, a bare "
            f'`python -c "pass"` took {milliseconds(sorted(times["nothing"])[RUNS // 2])} (median): '
            "most of our import is the interpreter starting. The package loads no library at import; "
            "`tests/test_imports.py` checks that httpx, keyring, pydantic and ipywidgets stay unloaded."
        ),
        miss=(
            "Something heavy is imported by `ai_admin_widgets/__init__.py`: "
            '`python -X importtime -c "import ai_admin_widgets"` shows what; '
            "make it load on first use (the package's `__getattr__`)."
        ),
        extra={"python_alone_seconds": times["nothing"]},
    )
    emit([ours])


if __name__ == "__main__":
    main()
