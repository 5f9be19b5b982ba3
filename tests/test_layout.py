"""The layout's rules, read from the source (ast, nothing imported or executed).

* Import rules: which package of ``orpr_jax`` may import which (the table below is the
  map of ``docs/README.md``): ``sim`` imports nothing of the project but the validation
  helpers; ``labels`` and ``policies`` never import ``train``; ``evaluation`` imports none
  of ``train``, ``labels``, ``pipeline``, ``studies``; nothing imports ``cli`` (but
  ``python -m orpr_jax``); only ``pipeline`` and ``studies`` chain stages, so nothing
  below them imports them; library code never imports ``benchmarks``.
* Sizes: no module in ``orpr_jax/`` or ``benchmarks/`` over 500 lines, no function over
  120 lines.
* Every package's ``__init__.py`` says in its docstring what it holds.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "orpr_jax"

#: Top-level unit of ``orpr_jax`` -> the units it may import (besides itself).
ALLOWED: dict[str, set[str]] = {
    "_validation": set(),
    "sim": {"_validation"},
    "data": {"_validation", "sim"},
    "policies": {"_validation", "sim"},
    "exact": {"_validation", "sim"},
    "labels": {"_validation", "sim", "data", "policies"},
    "train": {"_validation", "sim", "data", "policies"},
    "evaluation": {"_validation", "sim", "data", "policies", "exact"},
    "suite": {"_validation", "sim", "data", "policies", "exact", "scenarios"},
    "scenarios": {"_validation", "sim", "data", "labels"},
    "distributed": {"_validation", "sim", "data", "policies", "labels"},
    "adapters": {"_validation", "sim", "data", "policies", "scenarios"},
    "pipeline": {"_validation", "sim", "data", "policies", "exact", "labels", "train",
                 "evaluation", "scenarios", "distributed", "suite", "adapters"},
    "studies": {"_validation", "sim", "data", "policies", "exact", "labels", "train",
                "evaluation", "scenarios", "distributed", "pipeline", "suite", "adapters"},
    "cli": {"_validation", "sim", "data", "policies", "exact", "labels", "train",
            "evaluation", "scenarios", "distributed", "pipeline", "studies", "suite", "adapters"},
    "__init__": {"sim", "data", "policies", "scenarios"},
    "__main__": {"cli"},
}

MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 120


def _unit(module: str) -> str:
    """``orpr_jax.sim.env`` -> ``sim``; ``orpr_jax`` -> ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1] if len(parts) > 2 else [parts[0], "__init__"]
    return ".".join(parts)


def imported_modules(source: str, module: str) -> set[str]:
    """Every module an import statement of ``source`` names (relative ones resolved
    against ``module``), including imports inside functions."""
    found: set[str] = set()
    package = module.split(".")
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level] + ([base] if base else []))
            found.add(base)
            # ``from orpr_jax import cli`` names the unit in the alias.
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def forbidden_edges(imports: dict[str, set[str]]) -> list[str]:
    """``"importer -> imported"`` for every edge the rules forbid.

    Args:
        imports: module name (``orpr_jax.x.y``) -> the modules it imports.
    """
    bad = []
    for module, targets in sorted(imports.items()):
        unit = _unit(module)
        allowed = ALLOWED.get(unit)
        for target in sorted(targets):
            if target == "benchmarks" or target.startswith("benchmarks."):
                bad.append(f"{module} -> {target} (library code never imports benchmarks)")
                continue
            if target != "orpr_jax" and not target.startswith("orpr_jax."):
                continue
            dep = _unit(target)
            if target == "orpr_jax" or dep == unit:
                continue
            if allowed is None:
                bad.append(f"{module} -> {target} ({unit} is not in the import table)")
            elif dep not in allowed:
                bad.append(f"{module} -> {target} ({unit} may import only "
                           f"{sorted(allowed) or 'nothing of the project'})")
    return bad


def _sources(folder: Path):
    for path in sorted(folder.rglob("*.py")):
        yield path, path.read_text()


def _project_imports() -> dict[str, set[str]]:
    return {_module_name(p): imported_modules(src, _module_name(p))
            for p, src in _sources(PACKAGE)}


def test_no_forbidden_import():
    bad = forbidden_edges(_project_imports())
    assert not bad, "forbidden imports:\n" + "\n".join(bad)


def test_every_unit_is_in_the_table():
    units = {_unit(m) for m in _project_imports()}
    assert units <= set(ALLOWED), sorted(units - set(ALLOWED))


@pytest.mark.parametrize(("module", "target"), [
    ("orpr_jax.sim.env", "orpr_jax.policies"),
    ("orpr_jax.labels.labeller", "orpr_jax.train.pretrain"),
    ("orpr_jax.policies.foundation", "orpr_jax.train"),
    ("orpr_jax.evaluation.report", "orpr_jax.labels.labeller"),
    ("orpr_jax.evaluation.baselines", "orpr_jax.pipeline"),
    ("orpr_jax.evaluation.tables", "orpr_jax.studies.demo"),
    ("orpr_jax.train.loop", "orpr_jax.cli"),
    ("orpr_jax.pipeline.run", "orpr_jax.cli"),
    ("orpr_jax.pipeline.run", "orpr_jax.studies"),
    ("orpr_jax.train.loop", "orpr_jax.pipeline.stages"),
    ("orpr_jax.labels.replay", "benchmarks.selection_instances"),
])
def test_rule_catches_edge(module, target):
    assert forbidden_edges({module: {target}})


def test_relative_and_alias_imports_resolve():
    src = "from . import types\nfrom ..train import rl\nfrom orpr_jax import cli\n"
    found = imported_modules(src, "orpr_jax.sim.env")
    assert {"orpr_jax.sim.types", "orpr_jax.train", "orpr_jax.cli"} <= found


def _function_lengths(source: str):
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node.name, node.lineno, node.end_lineno - node.lineno + 1


def _code_files():
    for folder in (PACKAGE, ROOT / "benchmarks"):
        yield from _sources(folder)


def test_module_sizes():
    big = [f"{p.relative_to(ROOT)}: {len(src.splitlines())} lines"
           for p, src in _code_files() if len(src.splitlines()) > MAX_MODULE_LINES]
    assert not big, f"modules over {MAX_MODULE_LINES} lines:\n" + "\n".join(big)


def test_function_sizes():
    long = [f"{p.relative_to(ROOT)}:{line} {name}: {n} lines"
            for p, src in _code_files() for name, line, n in _function_lengths(src)
            if n > MAX_FUNCTION_LINES]
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines:\n" + "\n".join(long)


def test_size_check_counts_functions():
    src = "def f():\n" + "    x = 1\n" * 130 + "    return x\n"
    assert [n for _, _, n in _function_lengths(src)] == [132]


def test_packages_say_what_they_hold():
    empty = [str(p.relative_to(ROOT)) for p in sorted(PACKAGE.rglob("__init__.py"))
             if not ast.get_docstring(ast.parse(p.read_text()))]
    assert not empty, "package __init__.py without a docstring: " + ", ".join(empty)
