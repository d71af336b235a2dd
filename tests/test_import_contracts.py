"""The layering, checked (functional core, imperative shell, thin routers): the import
contracts of pyproject.toml ([tool.importlinter]) hold. The pure core imports no database and
no web framework, the kernel imports no domain, and no route module imports another.

A broken contract prints the import chain that breaks it; fix the import (move the shared code
into a module both sides may import), not the contract.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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
