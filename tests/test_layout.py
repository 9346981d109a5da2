"""The core stands alone: attrs and the standard library, nothing else of this repository."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import convstats

CORE = Path(convstats.__file__).parent
ALLOWED_THIRD_PARTY = {"attrs"}


def _imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.partition(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.partition(".")[0])
    return roots


def test_the_core_imports_only_itself_attrs_and_the_standard_library():
    """No module of convstats/ but the __main__ shim imports an adapter, a driver or numpy."""
    for path in sorted(CORE.glob("*.py")):
        if path.name == "__main__.py":
            continue
        foreign = _imported_roots(path) - {"convstats", "__future__"} - ALLOWED_THIRD_PARTY
        assert foreign <= sys.stdlib_module_names, (path.name, foreign - sys.stdlib_module_names)


def test_the_core_imports_with_adapters_and_drivers_blocked():
    """import convstats works in a process where the adapters, pymongo and numpy cannot load."""
    blocked = ("convstats_adapters", "pymongo", "bson", "numpy")
    code = (
        f"import sys; sys.modules.update(dict.fromkeys({blocked!r}));"
        "import convstats, convstats.http, convstats.ports, convstats.errors;"
        "print(len(convstats.__all__))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert int(result.stdout) == len(convstats.__all__)


def test_adapters_use_only_the_declared_names_of_the_file_reader():
    """No adapter reaches into files.py past its __all__: the streaming loader included."""
    from convstats_adapters import files

    adapters = Path(files.__file__).parent
    for path in sorted(adapters.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module == "convstats_adapters.files":
                names = {alias.name for alias in node.names}
                assert names <= set(files.__all__), (path.name, names - set(files.__all__))
