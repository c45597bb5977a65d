"""What ``import ai_admin_widgets`` loads: nothing heavy until a name is first used.

Run in fresh subprocesses, because the test process has long imported everything.
These are behaviour checks (which modules are loaded), not timings; the import time
itself is measured by ``make bench`` (benchmarks/RESULTS.md).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

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


# --------------------------------------------------------------------------- #
# The layers: what the panel, ai-admin and ai may import (read from the source, not run)
# --------------------------------------------------------------------------- #

PACKAGE = Path(__file__).resolve().parent.parent / "ai_admin_widgets"
#: What a consumer of the Settings interface must never import: the local implementation.
IMPLEMENTATION = {"store", "access", "verify", "service"}


def runtime_imports(path: Path, package_folder: Path = PACKAGE) -> set[str]:
    """The package's own modules that ``path`` (a file under ``package_folder``) imports when it runs
    (lazy imports in functions included, ``if TYPE_CHECKING:`` blocks left out), named under ``ai_admin_widgets``."""
    parts = path.relative_to(package_folder.parent).with_suffix("").parts
    package = parts[:-1]  # a module's package: ("ai_admin_widgets", "widgets") for widgets/panel.py
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else ()
            module = ".".join([*base, *(node.module.split(".") if node.module else [])])
            names = [module] if node.module else [f"{module}.{alias.name}" for alias in node.names]
            found.update(name for name in names if name.startswith("ai_admin_widgets"))
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("ai_admin_widgets"))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
    return {name.removeprefix("ai_admin_widgets.") for name in found}


WIDGET_FILES = sorted((PACKAGE / "widgets").glob("*.py"))


@pytest.mark.parametrize("path", WIDGET_FILES, ids=lambda path: f"widgets/{path.name}")
def test_the_widgets_import_only_the_models_and_the_interface(path):
    outside = {name for name in runtime_imports(path) if not name.startswith("widgets")}
    assert outside <= {"models", "interface"}, f"widgets/{path.name} imports {sorted(outside)}"


@pytest.mark.parametrize("path", [*WIDGET_FILES, PACKAGE / "cli.py", PACKAGE / "ai.py"], ids=lambda path: path.name)
def test_the_consumers_of_the_interface_import_none_of_its_implementation(path):
    imported = {name.split(".")[0] for name in runtime_imports(path)}
    assert not imported & IMPLEMENTATION, f"{path.name} imports {sorted(imported & IMPLEMENTATION)}"


def test_the_import_reader_sees_lazy_and_relative_imports_but_not_type_checking_ones(tmp_path):
    source = (
        "from typing import TYPE_CHECKING\n"
        "from ..models import Provider\n"
        "from . import style\n"
        "if TYPE_CHECKING:\n"
        "    from ..service import AISettings\n"
        "def later():\n"
        "    from ..store import SettingsStore\n"
        "    import ai_admin_widgets.verify\n"
    )
    probe = tmp_path / "ai_admin_widgets" / "widgets" / "probe.py"
    probe.parent.mkdir(parents=True)
    probe.write_text(source, encoding="utf-8")
    assert runtime_imports(probe, tmp_path / "ai_admin_widgets") == {"models", "widgets.style", "store", "verify"}
