"""DESIGN.md's dependency rule, checked on every import statement of the packages (function
level too): the shell imports no domain package (but its composition root, ecovalue.app, and
the migrations, which name every line's tables); catalog imports neither valuation nor ledger;
valuation and ledger do not import each other; inside the ledger, core imports no floor above
it, carbon only core, and every other floor only core and carbon ("never sideways or up")."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("ecovalue", "catalog", "valuation", "ledger")
DOMAIN = ("catalog", "valuation", "ledger")


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _top(name: str, depth: int = 1) -> str:
    return ".".join(name.split(".")[:depth])


def allowed(module: str, imported: str) -> bool:
    """Whether `module` may import `imported` under DESIGN.md's rule."""
    package, target = _top(module), _top(imported)
    if target not in PACKAGES or target == "ecovalue":
        return True  # libraries, and the shell's infrastructure (everyone may use it)
    if package == "ecovalue":
        return module == "ecovalue.app" or module.startswith("ecovalue.migrations")
    if package == "catalog":
        return target == "catalog"
    if package == "valuation":
        return target in ("valuation", "catalog")
    # package == "ledger"
    if target == "catalog":
        return True
    if target != "ledger":
        return False
    floor, other = _top(module, 2), _top(imported, 2)
    if other in (floor, "ledger"):
        return True
    if floor == "ledger.core":
        return False
    if floor == "ledger.carbon":
        return other == "ledger.core"
    return other in ("ledger.core", "ledger.carbon")


def test_the_rule_itself():
    assert allowed("ledger.market.services.common", "ledger.carbon.services")
    assert allowed("ledger.sharing.api", "ledger.core")
    assert not allowed("ledger.reconcile.services.reports", "ledger.sharing.services")
    assert not allowed("ledger.core.posting", "ledger.carbon.models")
    assert not allowed("ledger.carbon.services", "ledger.market.models")
    assert not allowed("valuation.services", "ledger.core")
    assert not allowed("ledger.pilot.services", "valuation.grid")
    assert not allowed("catalog.services", "valuation.models")
    assert not allowed("ecovalue.db", "catalog.models")
    assert allowed("ecovalue.app", "ledger.sharing.services")


FILES = sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", PACKAGES)
def test_every_import_follows_the_dependency_rule(package):
    wrong = sorted(f"{_module(path)} imports {name}"
                   for path in FILES if _top(_module(path)) == package
                   for name in _imports(path) if not allowed(_module(path), name))
    assert wrong == []
