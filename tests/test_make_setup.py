"""`make run` sets up what the app needs to run and nothing more: a fresh copy of the project,
`make setup` (the step `make run` starts with), and neither the Python test tools nor the
npm dev packages are there. The copy is real, and so are pip and npm."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SETUP_TIMEOUT_S = 600


@pytest.fixture(scope="module")
def fresh_setup(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("make") is None or shutil.which("npm") is None:
        pytest.fail("make and npm are needed to set Stepwise up")
    copy = tmp_path_factory.mktemp("fresh") / "stepwise"
    copy.mkdir()
    for name in (
        "Makefile",
        "pyproject.toml",
        "requirements.lock",
        "README.md",
        "package.json",
        "package-lock.json",
    ):
        shutil.copy2(PROJECT_ROOT / name, copy / name)
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", "vendor")
    for name in ("app", "migrations"):
        shutil.copytree(PROJECT_ROOT / name, copy / name, ignore=skip)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "MAKE"))}
    done = subprocess.run(
        ["make", "setup"],
        cwd=copy,
        env={**env, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
        capture_output=True,
        text=True,
        timeout=SETUP_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return copy


def installed(copy: Path, module: str) -> bool:
    probe = subprocess.run(
        [str(copy / ".venv/bin/python"), "-c", f"import {module}"],
        capture_output=True,
        check=False,
    )
    return probe.returncode == 0


def test_the_run_setup_installs_the_app_and_its_assets(fresh_setup: Path) -> None:
    for module in ("app.main", "fastapi", "uvicorn", "sqlalchemy", "alembic"):
        assert installed(fresh_setup, module), module
    assert (fresh_setup / ".venv/bin/stepwise").exists()
    # At the versions the lock names, not whatever the index offers today.
    frozen = subprocess.run(
        [str(fresh_setup / ".venv/bin/python"), "-m", "pip", "freeze", "--exclude-editable"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    lock = (fresh_setup / "requirements.lock").read_text().split()
    for package in ("fastapi", "uvicorn", "SQLAlchemy", "starlette", "pydantic"):
        (pin,) = [line for line in lock if line.startswith(package + "==")]
        assert pin in frozen, pin
    for asset in ("htmx.min.js", "ws.min.js", "swagger-ui-bundle.js", "swagger-ui.css"):
        assert (fresh_setup / "app/static/vendor" / asset).stat().st_size > 1000, asset


def test_the_run_setup_installs_no_test_tools(fresh_setup: Path) -> None:
    for module in ("pytest", "playwright", "hypothesis", "ruff"):
        assert not installed(fresh_setup, module), f"{module} was installed to run the app"
    assert not (fresh_setup / "node_modules/axe-core").exists()
    assert (fresh_setup / "node_modules/htmx.org").exists()
