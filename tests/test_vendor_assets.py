"""The vendored front-end assets are the exact versions pinned in package.json."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent
VENDOR = PROJECT_ROOT / "app" / "static" / "vendor"
SETUP_HINT = "run `make setup` to install the front-end assets"


def _pinned() -> dict[str, str]:
    return json.loads((PROJECT_ROOT / "package.json").read_text())["dependencies"]


def _vendored(name: str) -> bytes:
    path = VENDOR / name
    assert path.is_file(), f"{path} is missing; {SETUP_HINT}"
    return path.read_bytes()


@pytest.mark.parametrize("package", ["htmx.org", "htmx-ext-ws"])
def test_versions_are_pinned_exactly_2_0_x(package: str) -> None:
    version = _pinned()[package]
    assert re.fullmatch(r"2\.0\.\d+", version), f"{package} must be pinned exactly, got {version}"

    lock = json.loads((PROJECT_ROOT / "package-lock.json").read_text())
    assert lock["packages"][f"node_modules/{package}"]["version"] == version


def test_htmx_is_the_pinned_version() -> None:
    found = re.findall(rb'version:\s*"(\d+\.\d+\.\d+)"', _vendored("htmx.min.js"))

    assert found == [_pinned()["htmx.org"].encode()]


def test_ws_extension_is_the_pinned_version() -> None:
    # ws.min.js carries no version string: compare it with the file of the installed package,
    # whose own package.json states its version.
    package_dir = PROJECT_ROOT / "node_modules" / "htmx-ext-ws"
    manifest = package_dir / "package.json"
    assert manifest.is_file(), f"{manifest} is missing; {SETUP_HINT}"

    assert json.loads(manifest.read_text())["version"] == _pinned()["htmx-ext-ws"]
    vendored = _vendored("ws.min.js")
    assert vendored == (package_dir / "dist" / "ws.min.js").read_bytes()
    assert b'defineExtension("ws"' in vendored


def test_htmx_is_served(live_server: str) -> None:
    response = httpx.get(f"{live_server}/static/vendor/htmx.min.js", timeout=15)

    assert response.status_code == 200
    assert "javascript" in response.headers["content-type"]
    assert response.content == _vendored("htmx.min.js")


@pytest.mark.parametrize("name", ["swagger-ui-bundle.js", "swagger-ui.css"])
def test_swagger_ui_is_the_installed_pinned_package(name: str) -> None:
    package_dir = PROJECT_ROOT / "node_modules" / "swagger-ui-dist"
    installed = json.loads((package_dir / "package.json").read_text())["version"]
    assert installed == _pinned()["swagger-ui-dist"]
    assert _vendored(name) == (package_dir / name).read_bytes()
