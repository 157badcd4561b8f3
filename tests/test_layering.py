"""The package's dependencies point one way: inference -> frozen -> modules -> ops -> backends (eager, native,
triton) -> the leaf (_layout); the truth (reference) imports nothing of ours. Read from the sources' import statements."""
import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "fusedfire"
# module -> the fusedfire modules it may import (its own submodules aside)
ALLOWED = {
    "_layout": set(),
    "reference": set(),
    "configs": set(),
    "roofline": set(),
    "eager": {"_layout"},
    "native": set(),
    "triton": {"_layout"},
    "testing": {"reference"},
    "ops": {"_layout", "eager", "native", "reference", "triton"},
    "modules": {"ops", "reference"},
    "frozen": {"modules", "ops"},
    "inference": {"frozen", "modules", "native"},  # native: empty_cache
}


def _imports(path: pathlib.Path, package: str) -> set:
    """The top-level fusedfire modules that `path` (inside fusedfire/`package`) imports."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level == 0 and (node.module or "").startswith("fusedfire"):
                parts = node.module.split(".")[1:]
            elif node.level == 1:
                parts = ([package] if package else []) + (node.module.split(".") if node.module else [])
            elif node.level == 2:
                parts = node.module.split(".") if node.module else []
            else:
                continue
            if not parts:  # `from . import a, b` / `from fusedfire import a`
                found |= {alias.name for alias in node.names}
            else:
                found.add(parts[0])
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("fusedfire.")}
    return found - ({package} if package else set())


@pytest.mark.parametrize("module", sorted(ALLOWED))
def test_dependencies_point_one_way(module):
    paths = sorted((PACKAGE / module).glob("*.py")) if (PACKAGE / module).is_dir() else [PACKAGE / f"{module}.py"]
    package = module if (PACKAGE / module).is_dir() else ""
    used = set().union(*(_imports(p, package) for p in paths))
    assert used <= ALLOWED[module], f"fusedfire.{module} imports {sorted(used - ALLOWED[module])}"


def test_a_planted_circle_is_caught(tmp_path):
    """Test of the test: a leaf's relative imports of ops and a backend are both seen (the old circle:
reference.py imported memory_format from ops)."""
    leaf = tmp_path / "_layout.py"
    leaf.write_text("from .ops import fire\nfrom . import eager\n")
    assert _imports(leaf, "") == {"ops", "eager"}
