"""Run every benchmark and write benchmarks/RESULTS.md (and the README's table of figures).

Usage: python benchmarks/run.py [--only NAME ...]      (``make bench`` runs all of them)

Each ``bench_*.py`` runs in a fresh process of its own and prints its figures as JSON
(see common.py). The machine is described first, with its load when the run starts,
because the figures are wall times: on a machine that others use at the same time
they are noisier, and the ratios (both sides measured in turns) are what to compare.
Exit status: 0 when every benchmark ran (a missed target is reported, not an error),
1 when a benchmark failed.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from common import OUTSIDE_WORLD_VARIABLES, ROOT, milliseconds

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "RESULTS.md"
README = ROOT / "README.md"
#: The README's table sits between these two lines; run.py rewrites what is between them.
README_START = "<!-- benchmark figures: written by `make bench`, do not edit by hand -->"
README_END = "<!-- end of benchmark figures -->"
#: In the order they run and are reported.
BENCHMARKS = ("import", "save", "failing_fast", "panel", "ai", "notebooks")


def cpu_model() -> str:
    """The CPU's model name, from /proc/cpuinfo where there is one."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def memory() -> str:
    """Total memory, from /proc/meminfo where there is one."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return "unknown"


def load() -> str:
    """The 1, 5 and 15 minute load averages."""
    try:
        return ", ".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:
        return "unknown"


def commit() -> str:
    """The checked-out commit, marked when the work tree has changes."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        changed = subprocess.run(
            [
                "git",
                "status",
                "--porcelain",
                "--untracked-files=no",
                "--",
                ".",
                ":!benchmarks/RESULTS.md",
                ":!README.md",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        return head + (" (with uncommitted changes)" if changed else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def machine() -> dict[str, str]:
    """What the figures were measured on, read now (before any benchmark runs)."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "CPU": cpu_model(),
        "Cores": f"{os.cpu_count()} ({usable} usable by this process)",
        "Memory": memory(),
        "Python": f"{platform.python_implementation()} {platform.python_version()}",
        "OS": platform.platform(),
        "Load at start (1, 5, 15 min)": load(),
    }


def run_benchmark(name: str) -> tuple[list[dict[str, Any]], float, str | None]:
    """Run ``bench_<name>.py`` in a fresh process; its figures, its wall time, and the error if it failed."""
    environment = {key: value for key, value in os.environ.items() if key not in OUTSIDE_WORLD_VARIABLES}
    started = time.perf_counter()
    finished = subprocess.run(
        [sys.executable, str(HERE / f"bench_{name}.py")], cwd=HERE, env=environment, capture_output=True, text=True
    )
    elapsed = time.perf_counter() - started
    if finished.returncode != 0:
        return [], elapsed, (finished.stderr.strip() or finished.stdout.strip())[-2000:]
    try:
        return json.loads(finished.stdout.strip().splitlines()[-1])["figures"], elapsed, None
    except (ValueError, IndexError, KeyError):
        return [], elapsed, f"no figures in its output: {finished.stdout[-500:]!r}"


def seconds(value: float) -> str:
    """A wall time in the unit that reads best."""
    return milliseconds(value) if value < 10 else f"{value:.1f} s"


def verdict(entry: dict[str, Any]) -> str:
    if entry["met"] is True:
        return "met"
    if entry["met"] is False:
        return "**missed**"
    return "not measured" if not entry["ours_seconds"] else "reported"


def ratio(entry: dict[str, Any]) -> str:
    return f"{entry['ratio']:.2f}" if entry["ratio"] is not None else "—"


def medians(entry: dict[str, Any]) -> tuple[str, str]:
    ours = seconds(entry["ours_seconds"]["median"]) if entry["ours_seconds"] else "—"
    baseline = seconds(entry["baseline_seconds"]["median"]) if entry["baseline_seconds"] else "—"
    return ours, baseline


def results_markdown(
    description: dict[str, str], figures: list[dict[str, Any]], failures: dict[str, str], total: float, load_at_end: str
) -> str:
    lines = [
        "# Benchmark results",
        "",
        f"Written by `make bench` on {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC at commit "
        f"{commit()}, in {total:.0f} s. Wall times; the ratio is our median over the baseline's median "
        "(both measured in turns, in the same run), or for the failure figures the median over the limit.",
        "",
        "## Machine",
        "",
        "| | |",
        "| --- | --- |",
        *(f"| {key} | {value} |" for key, value in description.items()),
        f"| Load at end (1, 5, 15 min) | {load_at_end} |",
        "",
        "A load above the number of cores means other programs were running: wall times grow, and the",
        "ratios, whose two sides share the same moments, are the figures to compare.",
        "",
        "## Figures",
        "",
        "| Figure | Ratio | Ours (median) | Baseline (median) | Target | Met |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for entry in figures:
        ours, baseline = medians(entry)
        lines.append(
            f"| {entry['name']} | {ratio(entry)} | {ours} | {baseline} | {entry['target']} | {verdict(entry)} |"
        )
    for name in failures:
        lines.append(f"| {name} | — | — | — | — | **benchmark failed** |")
    lines += ["", "## How each figure was measured", ""]
    for entry in figures:
        lines.append(f"### {entry['name']}")
        lines.append("")
        lines.append(f"- Ours: {entry['ours']}.")
        if entry["baseline"]:
            lines.append(f"- Baseline: {entry['baseline']}.")
        for side, key in (("ours", "ours_seconds"), ("baseline", "baseline_seconds")):
            if entry[key]:
                spread = entry[key]
                lines.append(
                    f"- Runs ({side}): {entry['runs']}; median {seconds(spread['median'])}, "
                    f"lowest {seconds(spread['min'])}, highest {seconds(spread['max'])}."
                )
        if entry["how"]:
            lines.append(f"- {entry['how']}")
        if entry["met"] is False and entry["miss"]:
            lines.append(f"- **Missed; what would close it:** {entry['miss']}")
        lines.append("")
    for name, error in failures.items():
        lines += [f"### {name}: the benchmark failed", "", "```", error, "```", ""]
    lines += [
        "## Reproduce",
        "",
        "```sh",
        "make bench      # builds .venv like make test, runs benchmarks/, writes this file",
        "```",
        "",
    ]
    return "\n".join(lines)


def readme_table(description: dict[str, str], figures: list[dict[str, Any]]) -> str:
    lines = [
        README_START,
        f"Measured on {description['CPU']}, {description['Cores'].split(' ')[0]} cores, {description['Python']}, "
        f"load {description['Load at start (1, 5, 15 min)'].split(',')[0]} at the start:",
        "",
        "| Figure | Ratio | Ours | Baseline | Target | Met |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for entry in figures:
        ours, baseline = medians(entry)
        lines.append(
            f"| {entry['name']} | {ratio(entry)} | {ours} | {baseline} | {entry['target']} | {verdict(entry)} |"
        )
    lines.append(README_END)
    return "\n".join(lines)


def update_readme(table: str) -> bool:
    """Put ``table`` between the README's markers; False when the README has no markers."""
    text = README.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(README_START) + r".*?" + re.escape(README_END), re.S)
    if not pattern.search(text):
        return False
    README.write_text(pattern.sub(lambda _: table, text, count=1), encoding="utf-8")
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description="Run the benchmarks and write benchmarks/RESULTS.md.")
    parser.add_argument(
        "--only", nargs="+", choices=BENCHMARKS, help="run only these (RESULTS.md then holds only them)"
    )
    arguments = parser.parse_args()
    description = machine()
    print("Machine: " + "; ".join(f"{key}: {value}" for key, value in description.items()), flush=True)
    started = time.perf_counter()
    figures: list[dict[str, Any]] = []
    failures: dict[str, str] = {}
    for name in arguments.only or BENCHMARKS:
        print(f"- {name} ...", end=" ", flush=True)
        found, elapsed, error = run_benchmark(name)
        if error is not None:
            failures[name] = error
            print(f"FAILED after {elapsed:.0f} s:\n{error}", flush=True)
            continue
        figures.extend(found)
        print(
            f"{elapsed:.0f} s: " + "; ".join(f"{entry['name']} {ratio(entry)} ({verdict(entry)})" for entry in found),
            flush=True,
        )
    total = time.perf_counter() - started
    RESULTS.write_text(results_markdown(description, figures, failures, total, load()), encoding="utf-8")
    print(f"Wrote {RESULTS.relative_to(ROOT)} ({total:.0f} s).")
    if not arguments.only and not failures and update_readme(readme_table(description, figures)):
        print("Updated the Benchmarks table in README.md.")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
