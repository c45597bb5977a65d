"""What ``import ai_admin_widgets`` loads: nothing heavy until a name is first used.

Run in fresh subprocesses, because the test process has long imported everything.
These are behaviour checks (which modules are loaded), not timings; the import time
itself is measured by ``make bench`` (benchmarks/RESULTS.md).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("httpx", "keyring", "pydantic", "ipywidgets", "anywidget", "filelock", "platformdirs")


def loaded_after(code: str) -> set[str]:
    """The HEAVY modules, and the package's own submodules, in sys.modules after running ``code`` in a fresh Python."""
    probe = (
        "import json, sys\n"
        f"{code}\n"
        f"heavy = {HEAVY!r}\n"
        "print(json.dumps(sorted(name for name in sys.modules"
        " if name.split('.')[0] in heavy or name.startswith('ai_admin_widgets.'))))\n"
    )
    finished = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    return set(json.loads(finished.stdout))


def test_importing_the_package_loads_no_library_and_none_of_its_modules():
    assert loaded_after("import ai_admin_widgets") == set()


def test_the_version_and_the_list_of_names_need_nothing_loaded():
    assert loaded_after("import ai_admin_widgets as aiw; aiw.__version__; dir(aiw)") == set()


@pytest.mark.parametrize(
    ("name", "not_loaded"),
    [
        (
            "OpenAIIntegration",
            {"httpx", "keyring", "ipywidgets", "anywidget", "ai_admin_widgets.store", "ai_admin_widgets.sandbox"},
        ),
        ("AISettings", {"ipywidgets", "anywidget", "ai_admin_widgets.sandbox", "ai_admin_widgets.widgets"}),
        ("Sandbox", {"httpx", "keyring", "ipywidgets", "ai_admin_widgets.store"}),
    ],
)
def test_a_name_loads_what_it_needs_and_not_the_rest(name, not_loaded):
    loaded = loaded_after(f"import ai_admin_widgets as aiw; aiw.{name}")
    assert not loaded & not_loaded, f"aiw.{name} loaded {sorted(loaded & not_loaded)}"


def test_an_unknown_name_is_an_attribute_error_naming_it():
    finished = subprocess.run(
        [sys.executable, "-c", "import ai_admin_widgets as aiw; aiw.AISetings"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert finished.returncode == 1
    assert "has no attribute 'AISetings'" in finished.stderr
