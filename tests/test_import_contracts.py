"""The layering, checked (functional core, imperative shell, thin routers): the import
contracts of pyproject.toml ([tool.importlinter]) hold. The pure core imports no database and
no web framework, the kernel imports no domain, and no route module imports another. Beyond
them: no two packages import each other, route modules leave the commit to services,
services speak no HTTP, and no module grows past what one reader can hold.

A broken contract prints what breaks it; fix the code (move the shared code into a module both
sides may import, the write into a service), not the contract.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import tomllib
from collections import defaultdict
from pathlib import Path

import grimp

PROJECT_ROOT = Path(__file__).resolve().parent.parent
TIMEOUT_S = 120


def test_the_import_contracts_hold() -> None:
    lint_imports = Path(sys.executable).parent / "lint-imports"
    assert lint_imports.exists(), "import-linter is a dev dependency: make dev-setup installs it"
    # The checkout's own app package, whatever else is installed.
    path = os.pathsep.join(p for p in (str(PROJECT_ROOT), os.environ.get("PYTHONPATH")) if p)
    done = subprocess.run(
        [str(lint_imports), "--no-cache", "--no-logo"],
        cwd=PROJECT_ROOT,
        env={**os.environ, "PYTHONPATH": path},
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


# Package-level cycles: a module of app.x imports one of app.y and a module of app.y imports
# one of app.x. The patients and session packages read each other on purpose (a patient's past
# sessions, a session's patient), so that pair may stay; any other pair is a cycle to break by
# moving the module that crosses into the package it depends on.
ALLOWED_PACKAGE_CYCLES = {frozenset({"app.patients", "app.session"})}


def _package(module: str) -> str:
    return ".".join(module.split(".")[:2])


def package_cycles() -> dict[frozenset[str], list[str]]:
    """Each pair of packages that import each other, with the module imports that make it."""
    graph = grimp.build_graph("app")
    crossings: dict[tuple[str, str], list[str]] = defaultdict(list)
    for importer in graph.modules:
        for imported in graph.find_modules_directly_imported_by(importer):
            if _package(importer) != _package(imported):
                crossings[_package(importer), _package(imported)].append(
                    f"{importer} -> {imported}"
                )
    return {
        frozenset(pair): sorted(imports + crossings[pair[::-1]])
        for pair, imports in crossings.items()
        if pair[::-1] in crossings
    }


def test_no_two_packages_import_each_other() -> None:
    unexpected = {
        " <-> ".join(sorted(pair)): imports
        for pair, imports in package_cycles().items()
        if pair not in ALLOWED_PACKAGE_CYCLES
    }
    assert not unexpected, "\n".join(
        f"{pair}:\n    " + "\n    ".join(imports) for pair, imports in sorted(unexpected.items())
    )


def _contract_modules(name: str) -> list[str]:
    config = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    (contract,) = (c for c in config["tool"]["importlinter"]["contracts"] if c["name"] == name)
    return contract["modules"]


def _source(module: str) -> Path:
    return PROJECT_ROOT.joinpath(*module.split(".")).with_suffix(".py")


ROUTE_MODULES = _contract_modules("No route module imports another")


def test_route_modules_leave_the_commit_to_services() -> None:
    commits = [
        f"{_source(module).relative_to(PROJECT_ROOT)}:{number}: {line.strip()}"
        for module in ROUTE_MODULES
        for number, line in enumerate(_source(module).read_text(encoding="utf-8").splitlines(), 1)
        if ".commit(" in line
    ]
    assert not commits, "\n".join(commits)


SERVICE_MODULES = [
    *sorted(PROJECT_ROOT.glob("app/*/service.py")),
    # The session's shell around its pure machine.
    *(
        PROJECT_ROOT / "app/session" / name
        for name in (
            "alarm_store.py",
            "creation.py",
            "errors.py",
            "read.py",
            "store.py",
            "timer_firing.py",
            "unit_of_work.py",
            "vitals_commands.py",
        )
    ),
    # The sign-in's services beside app/auth/service.py.
    *(PROJECT_ROOT / "app/auth" / name for name in ("sign_in.py", "login_failures.py")),
]
WEB_FRAMEWORKS = {"fastapi", "starlette"}
# Where a status code is the domain's own record: an idempotent answer is replayed as the
# status and body it was first sent with (the column is status_code).
STATUS_CODE_HOLDERS = {"app/session/unit_of_work.py"}


def _web_framework_imports(tree: ast.Module) -> list[str]:
    imported = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.append(node.module)
    return [name for name in imported if name.split(".")[0] in WEB_FRAMEWORKS]


def test_services_speak_no_http() -> None:
    assert all(path.exists() for path in SERVICE_MODULES), SERVICE_MODULES
    problems = []
    for path in SERVICE_MODULES:
        where = str(path.relative_to(PROJECT_ROOT))
        source = path.read_text(encoding="utf-8")
        imports = _web_framework_imports(ast.parse(source))
        problems += [f"{where} imports {name}" for name in imports]
        if "HTTPException" in source:
            problems.append(f"{where} raises HTTPException")
        if ("status_code" in source) != (where in STATUS_CODE_HOLDERS):
            problems.append(f"{where}: status_code named {source.count('status_code')} times")
    assert not problems, "\n".join(problems)


# A module one reader can hold: most stay under about 400 lines; none may pass this. A module
# that grows past it has more than one job; split it by job, not by line number.
MODULE_LINE_LIMIT = 600


def test_no_module_is_too_long_to_read() -> None:
    lengths = {
        str(path.relative_to(PROJECT_ROOT)): len(path.read_text(encoding="utf-8").splitlines())
        for path in sorted((PROJECT_ROOT / "app").rglob("*.py"))
    }
    assert len(lengths) > 50, "the app's modules were not found"
    too_long = [
        f"{path}: {count} lines" for path, count in lengths.items() if count > MODULE_LINE_LIMIT
    ]
    assert not too_long, "\n".join(too_long)
