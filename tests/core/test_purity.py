"""The core is pure: importing any of its modules loads nothing but the standard library and the core itself,
so the accounting rules can be read, tested and mutated without a database or a web framework."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import ledger.core

CORE_MODULES = sorted(f"ledger.core.{module.name}" for module in pkgutil.iter_modules(ledger.core.__path__))


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


def test_importing_the_recipes_loads_no_database():
    result = _run("import ledger.core.recipes, sys; assert 'sqlalchemy' not in sys.modules")

    assert result.returncode == 0, result.stderr


def test_every_core_module_imports_only_the_standard_library_and_the_core():
    assert "ledger.core.recipes" in CORE_MODULES and "ledger.core.money" in CORE_MODULES
    code = (f"import sys\nbefore = set(sys.modules)\nimport {', '.join(CORE_MODULES)}\n"
            "foreign = sorted(name for name in set(sys.modules) - before\n"
            "                 if name.split('.')[0] not in sys.stdlib_module_names\n"
            "                 and name not in ('ledger', 'ledger.core') and not name.startswith('ledger.core.'))\n"
            "print('\\n'.join(foreign))")
    result = _run(code)

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == []


def test_the_purity_check_notices_a_foreign_import():
    """Guards the test above against checking nothing: an import of SQLAlchemy beside the core is seen."""
    code = ("import sys\nbefore = set(sys.modules)\nimport sqlalchemy, ledger.core.money\n"
            "print(sorted(n for n in set(sys.modules) - before if n.split('.')[0] not in sys.stdlib_module_names))")
    result = _run(code)

    assert "sqlalchemy" in result.stdout
