"""Run every benchmark and write benchmarks/RESULTS.md (and the README's table of figures).

Usage: python benchmarks/run.py [--only NAME ...]      (``make bench`` runs all of them,
       ``make bench BENCH="gateway ai"`` only those; a name may be written with ``-`` for ``_``:
       ``make bench BENCH=gateway-db`` runs ``bench_gateway_db.py``)

Each ``bench_*.py`` runs in a fresh process of its own and prints its figures as JSON
(see common.py). The machine is described first, with its load when the run starts,
because the figures are wall times: on a machine that others use at the same time
they are noisier, and the ratios (both sides measured in turns) are what to compare.
Each benchmark's figures are kept in benchmarks/results.json with when, where and at which
commit they were measured; a run of some benchmarks (``--only``) replaces theirs and keeps the
others' as they were, and RESULTS.md and the README's table are written from all of them.
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
#: Every benchmark's latest figures, with its run's description (machine, time, commit): what RESULTS.md is made of.
STORED = HERE / "results.json"
README = ROOT / "README.md"
#: The README's table sits between these two lines; run.py rewrites what is between them.
README_START = "<!-- benchmark figures: written by `make bench`, do not edit by hand -->"
README_END = "<!-- end of benchmark figures -->"
#: In the order they run and are reported.
BENCHMARKS = ("import", "save", "failing_fast", "panel", "panel_browser", "ai", "notebooks", "gateway", "gateway_db")


def benchmark_name(text: str) -> str:
    """A benchmark's name as ``--only`` takes it: ``gateway-db`` is ``gateway_db`` (the file is bench_gateway_db.py)."""
    return text.strip().replace("-", "_")


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
                ":!benchmarks/results.json",
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


def value(entry: dict[str, Any], number: float) -> str:
    """One of a figure's values in its unit (``entry["unit"]``: seconds unless it says otherwise)."""
    unit = entry.get("unit", "s")
    if unit == "s":
        return seconds(number)
    if unit == "MB":
        return f"{number:.1f} MB"
    return f"{number:.0f} {unit}"


def verdict(entry: dict[str, Any]) -> str:
    if entry["met"] is True:
        return "met"
    if entry["met"] is False:
        return "**missed**"
    return "not measured" if not entry["ours_seconds"] else "reported"


def ratio(entry: dict[str, Any]) -> str:
    return f"{entry['ratio']:.2f}" if entry["ratio"] is not None else "—"


def medians(entry: dict[str, Any]) -> tuple[str, str]:
    ours = value(entry, entry["ours_seconds"]["median"]) if entry["ours_seconds"] else "—"
    baseline = value(entry, entry["baseline_seconds"]["median"]) if entry["baseline_seconds"] else "—"
    return ours, baseline


def stored_runs() -> dict[str, dict[str, Any]]:
    """What results.json holds: benchmark name -> its run (``figures``, ``error``, ``measured_at``, ``commit``, ...)."""
    try:
        stored = json.loads(STORED.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    runs = stored.get("benchmarks") if isinstance(stored, dict) else None
    return {name: run for name, run in (runs or {}).items() if name in BENCHMARKS and isinstance(run, dict)}


def in_order(runs: dict[str, dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    return [(name, runs[name]) for name in BENCHMARKS if name in runs]


def results_markdown(runs: dict[str, dict[str, Any]], description: dict[str, str]) -> str:
    """RESULTS.md from every benchmark's latest run; ``description`` is this run's machine."""
    figures = [entry for _, run in in_order(runs) for entry in run["figures"]]
    failures = {name: run["error"] for name, run in in_order(runs) if run.get("error")}
    sessions: dict[tuple[str, str], list[str]] = {}
    for name, run in in_order(runs):
        sessions.setdefault((run["measured_at"], run["commit"]), []).append(name)
    lines = [
        "# Benchmark results",
        "",
        f"Written by `make bench` on {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC. Wall times; "
        "the ratio is our median over the baseline's median (both measured in turns, in the same run), or for the "
        "failure and memory figures the median over the limit. Each benchmark's figures are from its latest run "
        "(`make bench BENCH=name` runs only some): the runs are listed below.",
        "",
        "## Machine",
        "",
        "| | |",
        "| --- | --- |",
        *(f"| {key} | {text} |" for key, text in description.items() if not key.startswith("Load")),
        "",
        "## Runs",
        "",
        "| Benchmarks | Measured (UTC) | Commit | Load at start (1, 5, 15 min) | Load at end | Took |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for (measured_at, at_commit), names in sessions.items():
        first, last = runs[names[0]], runs[names[-1]]
        times = [runs[name].get("seconds") for name in names]
        took = f"{sum(times):.0f} s" if None not in times else "—"  # figures kept from before results.json: "—"
        lines.append(
            f"| {', '.join(names)} | {measured_at} | {at_commit} | {first['load_at_start']} | "
            f"{last['load_at_end']} | {took} |"
        )
    lines += [
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
                    f"- Runs ({side}): {entry['runs']}; median {value(entry, spread['median'])}, "
                    f"lowest {value(entry, spread['min'])}, highest {value(entry, spread['max'])}."
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
        "make bench                 # builds .venv like make test, runs benchmarks/, writes this file",
        "make bench BENCH=gateway   # only the gateway's figures; the others stay as they were",
        "make bench BENCH=gateway-db  # the gateway on SQLite and PostgreSQL: usage and budgets on/off, replicas",
        "make bench BENCH=panel-browser  # the panel in JupyterLab in Chromium: from running its cell to its row shown",
        "```",
        "",
    ]
    return "\n".join(lines)


def readme_table(runs: dict[str, dict[str, Any]], description: dict[str, str]) -> str:
    figures = [entry for _, run in in_order(runs) for entry in run["figures"]]
    loads = sorted({run["load_at_start"].split(",")[0] for _, run in in_order(runs)})
    lines = [
        README_START,
        f"Measured on {description['CPU']}, {description['Cores'].split(' ')[0]} cores, {description['Python']}, "
        f"load {' to '.join(dict.fromkeys([loads[0], loads[-1]]))} at the start of the runs:",
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
        "--only",
        nargs="+",
        type=benchmark_name,
        choices=BENCHMARKS,
        metavar="NAME",
        help=f"run only these ({', '.join(BENCHMARKS)}); the others' figures stay as results.json has them",
    )
    arguments = parser.parse_args()
    description = machine()
    print("Machine: " + "; ".join(f"{key}: {text}" for key, text in description.items()), flush=True)
    runs = stored_runs() if arguments.only else {}
    measured_at = f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M}"
    at_commit = commit()
    started = time.perf_counter()
    failed = False
    for name in arguments.only or BENCHMARKS:
        print(f"- {name} ...", end=" ", flush=True)
        load_at_start = load()
        found, elapsed, error = run_benchmark(name)
        runs[name] = {
            "figures": found,
            "error": error,
            "measured_at": measured_at,
            "commit": at_commit,
            "load_at_start": load_at_start,
            "load_at_end": load(),
            "seconds": elapsed,
            "machine": description,
        }
        if error is not None:
            failed = True
            print(f"FAILED after {elapsed:.0f} s:\n{error}", flush=True)
            continue
        print(
            f"{elapsed:.0f} s: " + "; ".join(f"{entry['name']} {ratio(entry)} ({verdict(entry)})" for entry in found),
            flush=True,
        )
    total = time.perf_counter() - started
    STORED.write_text(json.dumps({"benchmarks": dict(in_order(runs))}, indent=1) + "\n", encoding="utf-8")
    RESULTS.write_text(results_markdown(runs, description), encoding="utf-8")
    print(f"Wrote {RESULTS.relative_to(ROOT)} and {STORED.relative_to(ROOT)} ({total:.0f} s).")
    missing = [name for name in BENCHMARKS if name not in runs]
    if missing:
        print(f"The README's table is left as it was: no figures yet of {', '.join(missing)} (run `make bench`).")
    elif not any(run.get("error") for run in runs.values()) and update_readme(readme_table(runs, description)):
        print("Updated the Benchmarks table in README.md.")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
