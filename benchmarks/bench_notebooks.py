"""The walkthrough notebooks under nbval: the wall time of ``python -m pytest notebooks/``.

Whole-process wall time of the same command ``make test`` runs for the notebooks
(pytest with the project's nbval options from pyproject.toml), several times; every
run must pass. There is no target: the figure is reported with the machine's description.
"""

from __future__ import annotations

import re
import subprocess
import sys

from common import ROOT, emit, figure, interleaved, isolate_environment

RUNS = 1


def main() -> None:
    isolate_environment()
    notebooks = sorted(path.relative_to(ROOT).as_posix() for path in (ROOT / "notebooks").glob("*.ipynb"))
    outcomes: list[str] = []

    def run_nbval() -> None:
        finished = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", *notebooks],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        last = (finished.stdout.strip().splitlines() or [""])[-1]
        if finished.returncode != 0:
            raise SystemExit(f"nbval failed (exit {finished.returncode}): {last}\n{finished.stdout[-3000:]}")
        outcomes.append(re.sub(r"\s+in [\d.]+s.*$", "", last.strip("= ")))

    times = interleaved({"nbval": run_nbval}, runs=RUNS, warmups=0)
    emit(
        [
            figure(
                "notebooks (nbval)",
                ours=f"python -m pytest {' '.join(notebooks)} (nbval, as in make test)",
                measured=times["nbval"],
                target="reported (no target)",
                met=None,
                how=f"{RUNS} whole run{'s' if RUNS > 1 else ''}, pytest's start included; each run: {outcomes[-1]}.",
                extra={"notebooks": notebooks, "outcomes": outcomes},
            )
        ]
    )


if __name__ == "__main__":
    main()
