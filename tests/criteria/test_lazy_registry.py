"""The lazy registry and the lazy top-level package.

* `BUILTIN_CRITERIA` (the static name -> module table) equals a full scan of every
  module of `llenergymeasure.criteria`, so it cannot go stale;
* in a fresh interpreter, `import llenergymeasure; make_criterion("rolling_cv")` imports
  neither `scipy.signal` nor any other criterion module; `import llenergymeasure`
  alone imports none of its subpackages;
* `available_criteria()` still lists every built-in; attribute access by class name
  imports only that class's module;
* `base` does not import `registry` (the import cycle is gone).
"""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import llenergymeasure.criteria as criteria_pkg
from llenergymeasure.criteria import Criterion, available_criteria, criterion_class
from llenergymeasure.criteria.registry import BUILTIN_CRITERIA

SRC = Path(criteria_pkg.__file__).resolve().parents[2]
PKG = "llenergymeasure.criteria"
#: Modules the criteria package itself always imports (its `__init__`).
CORE_MODULES = {"base", "registry", "_spec", "stopping", "rolling_cv", "_rolling"}


def fresh(code: str) -> dict[str, object]:
    """Run ``code`` in a fresh interpreter; report the modules it left imported."""
    probe = (
        "import sys, json\n"
        f"{code}\n"
        "print(json.dumps({'modules': sorted(sys.modules)}))\n"
    )
    path = os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path}
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=False
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def criteria_modules(modules: list[str]) -> set[str]:
    return {m[len(PKG) + 1 :] for m in modules if m.startswith(PKG + ".")}


def test_builtin_table_matches_a_full_scan() -> None:
    found: dict[str, tuple[str, str]] = {}
    for mod in pkgutil.iter_modules(criteria_pkg.__path__):
        module = importlib.import_module(f"{PKG}.{mod.name}")
        for obj in vars(module).values():
            if (
                inspect.isclass(obj)
                and issubclass(obj, Criterion)
                and obj.__module__ == module.__name__
                and obj.name
            ):
                found[obj.name] = (mod.name, obj.__name__)
    assert found == BUILTIN_CRITERIA
    for name, (_, cls_name) in BUILTIN_CRITERIA.items():
        assert criterion_class(name).__name__ == cls_name


def test_first_make_criterion_imports_only_its_module() -> None:
    res = fresh("import llenergymeasure; llenergymeasure.make_criterion('rolling_cv')")
    modules = res["modules"]
    assert isinstance(modules, list)
    assert "scipy.signal" not in modules
    assert criteria_modules(modules) <= CORE_MODULES, criteria_modules(modules) - CORE_MODULES
    others = {m for m, _ in BUILTIN_CRITERIA.values()} - {"rolling_cv"}
    assert not criteria_modules(modules) & others


def test_another_criterion_imports_its_module_only() -> None:
    res = fresh("from llenergymeasure.criteria import make_criterion; make_criterion('pelt')")
    mods = criteria_modules(res["modules"])  # type: ignore[arg-type]
    assert "pelt" in mods
    assert mods - CORE_MODULES == {"pelt", "_schedule"}
    assert "scipy.signal" not in res["modules"]  # type: ignore[operator]


def test_import_llenergymeasure_imports_no_subpackage() -> None:
    res = fresh("import llenergymeasure")
    ours = [m for m in res["modules"] if m.startswith("llenergymeasure")]  # type: ignore[union-attr]
    assert ours == ["llenergymeasure"]
    assert "numpy" not in res["modules"]  # type: ignore[operator]


def test_top_level_names_still_resolve() -> None:
    import llenergymeasure

    for name in llenergymeasure.__all__:
        assert getattr(llenergymeasure, name) is not None, name
    assert llenergymeasure.make_criterion("fixed_count:n=3").min_samples == 3
    assert llenergymeasure.criteria is criteria_pkg
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        llenergymeasure.nope  # noqa: B018


def test_available_criteria_lists_every_builtin_lazily() -> None:
    assert set(BUILTIN_CRITERIA) <= set(available_criteria())
    res = fresh(
        "from llenergymeasure.criteria import available_criteria\n"
        "names = available_criteria()\n"
        "assert 'cao_rhinehart' in names and 'pelt' in names, names"
    )
    assert criteria_modules(res["modules"]) <= CORE_MODULES  # type: ignore[arg-type]


def test_class_name_attribute_imports_only_that_module() -> None:
    res = fresh("from llenergymeasure.criteria import KPSS\nassert KPSS.name == 'kpss'")
    mods = criteria_modules(res["modules"])  # type: ignore[arg-type]
    assert mods - CORE_MODULES == {"kpss", "_windows"}
    from llenergymeasure.criteria import MSER5, PELT

    assert PELT is criterion_class("pelt")
    assert MSER5 is criterion_class("mser5")
    with pytest.raises(AttributeError, match="NoSuchCriterion"):
        criteria_pkg.NoSuchCriterion  # noqa: B018


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


def test_base_does_not_import_the_registry() -> None:
    folder = Path(criteria_pkg.__file__).parent
    for module in ("base", "_spec"):
        imported = _imported_modules(folder / f"{module}.py")
        assert f"{PKG}.registry" not in imported, module
        assert not any(m.startswith(f"{PKG}.registry") for m in imported), module
