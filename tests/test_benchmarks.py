"""``make bench BENCH=name``: a run of some benchmarks replaces their figures and keeps the others' as they were.

benchmarks/run.py is run as ``make bench`` runs it (``main`` with ``--only``), on a copy of its
files in a temporary folder: its stored figures, its RESULTS.md and a README with the table's
markers there, and a stand-in ``bench_gateway.py`` that prints figures as every benchmark does
(no server is started). Nothing tracked is written.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "benchmarks"

OLD_FIGURE = {
    "name": "panel",
    "ours": "the panel",
    "ours_seconds": {"median": 0.14, "min": 0.0875, "max": 0.2766},
    "baseline": "a bare form",
    "baseline_seconds": {"median": 0.0232, "min": 0.0169, "max": 0.0259},
    "runs": 15,
    "ratio": 6.04,
    "target": "ratio ≤ 3",
    "met": False,
    "how": "15 runs of each.",
    "miss": "Build fewer widgets.",
    "unit": "s",
    "extra": {},
}

GATEWAY_SCRIPT = """
import json
figure = {
    "name": "gateway: throughput, 64 clients", "ours": "answers per second", "runs": 3,
    "ours_seconds": {"median": 136.0, "min": 127.0, "max": 144.0}, "baseline": "LiteLLM",
    "baseline_seconds": {"median": 38.0, "min": 26.0, "max": 53.0}, "ratio": 3.58, "target": "ratio ≥ 2",
    "met": True, "how": "64 clients.", "miss": "", "unit": "req/s", "extra": {},
}
print(json.dumps({"figures": [figure]}))
"""


@pytest.fixture
def run_py(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """benchmarks/run.py, its files in ``tmp_path``: every benchmark but the gateway measured on 2026-11-29."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    spec = importlib.util.spec_from_file_location("bench_run_under_test", BENCHMARKS / "run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    (tmp_path / "bench_gateway.py").write_text(textwrap.dedent(GATEWAY_SCRIPT), encoding="utf-8")
    readme = tmp_path / "README.md"
    readme.write_text(f"# Project\n\n{module.README_START}\nold table\n{module.README_END}\n\nmore\n", encoding="utf-8")
    old_run = {
        "error": None,
        "measured_at": "2026-11-29 21:19",
        "commit": "ede9331",
        "load_at_start": "0.86, 0.78, 1.30",
        "load_at_end": "0.81, 0.78, 1.24",
        "seconds": None,
        "machine": {},
    }
    stored = {
        name: {**old_run, "figures": [OLD_FIGURE | {"name": f"{name} figure"}] if name != "panel" else [OLD_FIGURE]}
        for name in module.BENCHMARKS
        if name != "gateway"
    }
    (tmp_path / "results.json").write_text(json.dumps({"benchmarks": stored}), encoding="utf-8")
    for name, path in (("HERE", tmp_path), ("STORED", tmp_path / "results.json"), ("RESULTS", tmp_path / "RESULTS.md")):
        monkeypatch.setattr(module, name, path)
    monkeypatch.setattr(module, "README", readme)
    monkeypatch.setattr(module, "ROOT", tmp_path)
    return module


def test_a_run_of_the_gateway_alone_keeps_every_other_figure_and_fills_the_readme(run_py, tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["run.py", "--only", "gateway"])
    assert run_py.main() == 0

    results = (tmp_path / "RESULTS.md").read_text(encoding="utf-8")
    assert "| panel | 6.04 | 140.0 ms | 23.2 ms | ratio ≤ 3 | **missed** |" in results
    assert "**Missed; what would close it:** Build fewer widgets." in results
    assert "| gateway: throughput, 64 clients | 3.58 | 136 req/s | 38 req/s | ratio ≥ 2 | met |" in results
    assert "- Runs (ours): 3; median 136 req/s, lowest 127 req/s, highest 144 req/s." in results
    # Which run each figure comes from: the old one, and this one.
    assert (
        "| import, save, failing_fast, panel, panel_browser, ai, notebooks, gateway_db | 2026-11-29 21:19 | ede9331 |"
        in results
    )
    assert "| gateway | " in results

    stored = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))["benchmarks"]
    assert list(stored) == list(run_py.BENCHMARKS)
    assert stored["panel"]["measured_at"] == "2026-11-29 21:19"
    assert stored["gateway"]["figures"][0]["ours_seconds"]["median"] == 136.0

    readme = (tmp_path / "README.md").read_text(encoding="utf-8")
    assert "old table" not in readme
    assert "| panel | 6.04 |" in readme and "| gateway: throughput, 64 clients | 3.58 |" in readme
    assert readme.endswith("\n\nmore\n")


GATEWAY_DB_SCRIPT = """
import json
figure = {
    "name": "gateway on SQLite: overhead with usage and budgets", "ours": "usage recorded", "runs": 9,
    "ours_seconds": {"median": 0.0042, "min": 0.0040, "max": 0.0049}, "baseline": "record_usage=False",
    "baseline_seconds": {"median": 0.0040, "min": 0.0038, "max": 0.0044}, "ratio": 1.05, "target": "ratio ≤ 1.2",
    "met": True, "how": "9 rounds.", "miss": "", "unit": "s", "extra": {},
}
print(json.dumps({"figures": [figure]}))
"""


def test_make_bench_gateway_db_runs_bench_gateway_db_alone_and_keeps_the_others(run_py, tmp_path, monkeypatch):
    """``make bench BENCH=gateway-db``: the name as typed with a hyphen runs bench_gateway_db.py."""
    (tmp_path / "bench_gateway_db.py").write_text(textwrap.dedent(GATEWAY_DB_SCRIPT), encoding="utf-8")
    stored = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
    del stored["benchmarks"]["gateway_db"]
    stored["benchmarks"]["gateway"] = stored["benchmarks"]["panel"] | {"figures": [OLD_FIGURE | {"name": "gw"}]}
    (tmp_path / "results.json").write_text(json.dumps(stored), encoding="utf-8")
    monkeypatch.setattr(sys, "argv", ["run.py", "--only", "gateway-db"])
    assert run_py.main() == 0

    results = (tmp_path / "RESULTS.md").read_text(encoding="utf-8")
    assert (
        "| gateway on SQLite: overhead with usage and budgets | 1.05 | 4.2 ms | 4.0 ms | ratio ≤ 1.2 | met |" in results
    )
    assert (
        "| import, save, failing_fast, panel, panel_browser, ai, notebooks, gateway | 2026-11-29 21:19 | ede9331 |"
        in results
    )
    assert "| gateway_db | " in results
    stored = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))["benchmarks"]
    assert list(stored) == list(run_py.BENCHMARKS) and stored["gateway"]["figures"][0]["name"] == "gw"
    assert stored["gateway_db"]["figures"][0]["ratio"] == 1.05
    # Every benchmark now has figures, so the README's table is written, the new figure in it.
    assert "| gateway on SQLite: overhead with usage and budgets | 1.05 |" in (tmp_path / "README.md").read_text()


def test_the_readme_is_left_alone_while_a_benchmark_has_never_run(run_py, tmp_path, monkeypatch, capsys):
    stored = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
    del stored["benchmarks"]["notebooks"]
    (tmp_path / "results.json").write_text(json.dumps(stored), encoding="utf-8")
    monkeypatch.setattr(sys, "argv", ["run.py", "--only", "gateway"])
    assert run_py.main() == 0
    assert "old table" in (tmp_path / "README.md").read_text(encoding="utf-8")
    assert "no figures yet of notebooks" in capsys.readouterr().out


@pytest.mark.sandbox
def test_the_load_generator_spreads_its_clients_over_two_replicas_and_reports_latencies():
    """The replicas figure's premise: with two URLs, client i goes to URL i mod 2, each with its own header."""
    import os
    import subprocess

    import ai_admin_widgets as aiw

    with aiw.Sandbox() as first, aiw.Sandbox() as second:
        urls = ",".join(f"{sandbox.openai_base_url}/chat/completions" for sandbox in (first, second))
        body = json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": "ping"}]})
        done = subprocess.run(
            [sys.executable, str(BENCHMARKS / "load_client.py"), urls, body, "--clients", "4", "--requests", "40"],
            cwd=BENCHMARKS,
            env=os.environ | {"BENCH_AUTHORIZATION": "Bearer sk-sandbox-one\nBearer sk-sandbox-two"},
            capture_output=True,
            text=True,
            timeout=120,
        )
        seen = [
            len([r for r in sandbox.requests if r["path"].endswith("/chat/completions")]) for sandbox in (first, second)
        ]
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["failed"] == 0 and result["statuses"] == {"200": 40}
    # The 40 requests are shared by the 4 clients as each is free: a faster replica answers more, but both get some,
    # each with its own header (a wrong one would be a 401), and what each counted is what each replica saw.
    assert sum(result["per_url"]) == 40 and min(result["per_url"]) > 0 and result["per_url"] == seen
    assert 0 < result["p50_seconds"] <= result["p99_seconds"] < 60
