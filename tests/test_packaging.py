"""The wheel is a complete installation: it carries the migrations, so an installed (non-editable)
stepwise can upgrade a database without the source tree. This is what the Docker image relies on.

The wheel is built the way the Dockerfile builds it, from a copy of the files its build stage
copies (so the build leaves no build/ or *.egg-info behind in the checkout), and checked twice:
by its file list, and by importing ``app`` from the unpacked wheel in a fresh interpreter.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import zipfile
from contextlib import closing
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

PROJECT_ROOT = Path(__file__).resolve().parent.parent
MIGRATIONS = PROJECT_ROOT / "migrations"
# Where pyproject.toml puts the top-level migrations/ folder inside the wheel.
PACKAGED_MIGRATIONS = "app/_migrations"
BUILD_TIMEOUT_S = 180


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(PROJECT_ROOT / name, source / name)
    skip_caches = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("app", "migrations"):
        shutil.copytree(PROJECT_ROOT / name, source / name, ignore=skip_caches)
    dist = work / "dist"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", str(dist), str(source)],
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
        check=False,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    (built,) = dist.glob("stepwise-*.whl")
    return built


def _names(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())


def _checkout_head() -> str:
    return ",".join(sorted(ScriptDirectory(str(MIGRATIONS)).get_heads()))


def test_the_wheel_carries_every_migration_script_inside_the_package(wheel: Path) -> None:
    scripts = [
        MIGRATIONS / "env.py",
        MIGRATIONS / "script.py.mako",
        *sorted((MIGRATIONS / "versions").glob("*.py")),
    ]
    assert len(scripts) > 3, "no migration scripts in the checkout?"
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        for script in scripts:
            name = f"{PACKAGED_MIGRATIONS}/{script.relative_to(MIGRATIONS).as_posix()}"
            assert name in names, f"{name} is not in {wheel.name}"
            assert archive.read(name) == script.read_bytes(), f"{name} differs from the checkout"
    # Nothing outside the `app` package: no top-level `migrations` in site-packages.
    top_level = {name.split("/", 1)[0] for name in names}
    assert {name for name in top_level if not name.endswith(".dist-info")} == {"app"}


def test_the_wheel_carries_every_module_of_app(wheel: Path) -> None:
    # pyproject.toml lists the subpackages by hand: one left out would be missing from the image.
    names = _names(wheel)
    modules = {
        path.relative_to(PROJECT_ROOT).as_posix()
        for path in (PROJECT_ROOT / "app").rglob("*.py")
        if "__pycache__" not in path.parts
    }
    missing = sorted(modules - names)
    assert not missing, f"add their packages to [tool.setuptools] packages: {missing}"


PROBE = """
import json, sys
import app
from app import schema
print(json.dumps({
    "app": app.__file__,
    "schema": schema.__file__,
    "migrations": str(schema.MIGRATIONS_DIR),
    "head": schema.head_revision(),
    "reached": schema.upgrade(sys.argv[1]),
}))
"""


def test_an_unpacked_wheel_finds_its_migrations_and_upgrades_a_fresh_database(
    wheel: Path, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    database = tmp_path / "fresh.db"
    # The unpacked wheel goes first on the path. The checkout's editable install is active in
    # this interpreter too, and could win, so the probe reports where `app` really came from.
    python_path = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEPWISE_")}
    probe = subprocess.run(
        [sys.executable, "-c", PROBE, f"sqlite+aiosqlite:///{database}"],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": python_path},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert probe.returncode == 0, probe.stdout + probe.stderr
    found = json.loads(probe.stdout.strip().splitlines()[-1])

    site = site.resolve()
    for module in ("app", "schema"):
        origin = Path(found[module]).resolve()
        assert origin.is_relative_to(site), f"{module} imported from {origin}, not the wheel"
        assert not origin.is_relative_to(PROJECT_ROOT), f"{module} imported from the checkout"
    assert Path(found["migrations"]).resolve() == site / PACKAGED_MIGRATIONS

    head = _checkout_head()
    assert found["head"] == head
    assert found["reached"] == head
    with closing(sqlite3.connect(database)) as connection:
        rows = connection.execute("SELECT version_num FROM alembic_version").fetchall()
    assert ",".join(sorted(version for (version,) in rows)) == head


def test_the_lock_pins_every_declared_dependency_within_its_range_and_is_what_is_installed() -> (
    None
):
    """requirements.lock is what every build installs (-c): it must name each dependency of
    pyproject.toml (runtime and test tools) at one version the range accepts, and the
    environment the tests run in must be exactly it."""
    import tomllib
    from importlib.metadata import version

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    root = Path(__file__).resolve().parents[1]
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    declared = [Requirement(r) for r in project["dependencies"]]
    declared += [Requirement(r) for r in project["optional-dependencies"]["dev"]]
    pinned = {}
    for line in (root / "requirements.lock").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, pin = line.partition("==")
            pinned[canonicalize_name(name)] = pin.strip()
    for requirement in declared:
        pin = pinned.get(canonicalize_name(requirement.name))
        assert pin is not None, f"{requirement.name} is not in requirements.lock"
        assert requirement.specifier.contains(pin, prereleases=True), (requirement, pin)
    for name, pin in pinned.items():
        assert version(name) == pin, f"{name} {version(name)} installed, the lock says {pin}"
