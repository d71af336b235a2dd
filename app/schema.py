"""Running the Alembic migrations from Python: used by ``stepwise db``, the app and the tests."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from app.db import backend_name

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# The scripts are kept in the repository's top-level migrations/ folder, and a checkout or an
# editable install reads them there. A wheel cannot put that folder beside the package without
# adding a stray top-level `migrations` to site-packages, so pyproject.toml packs it into the
# package as app/_migrations/, a folder that therefore exists only in an installed wheel.
_PACKAGED_MIGRATIONS = Path(__file__).resolve().parent / "_migrations"
MIGRATIONS_DIR = (
    _PACKAGED_MIGRATIONS if _PACKAGED_MIGRATIONS.is_dir() else PROJECT_ROOT / "migrations"
)
# Present in a checkout only; it serves the ``alembic`` command line, and Config() does without.
ALEMBIC_INI = PROJECT_ROOT / "alembic.ini"

# migrations/env.py leaves the revision reached in the Config's attributes under this key.
REVISION_ATTRIBUTE = "stepwise_revision"


def alembic_config(database_url: str | None = None) -> Config:
    """The Alembic configuration of this project, optionally bound to ``database_url``.

    Logging is left alone: the ini file's logging section is only for the ``alembic`` command
    line, and applying it here would silence the application's own loggers.
    """
    config = Config(str(ALEMBIC_INI)) if ALEMBIC_INI.is_file() else Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["configure_logger"] = False
    if database_url is not None:
        backend_name(database_url)  # fail early and clearly on an unsupported URL
        # configparser treats "%" as interpolation; URL-encoded passwords contain it.
        config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def head_revision() -> str:
    """The head revision of the migration scripts (several heads are joined with commas)."""
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    if not heads:
        raise RuntimeError(f"no migration scripts found in {MIGRATIONS_DIR}")
    return ",".join(sorted(heads))


def is_known_revision(revision: str) -> bool:
    """Whether every head in ``revision`` (comma-joined, as ``current_revision`` gives it) is a
    migration script of this code: a database or backup made by a newer version is not."""
    scripts = ScriptDirectory.from_config(alembic_config()).walk_revisions()
    known = {script.revision for script in scripts}
    return all(head in known for head in revision.split(","))


def current_revision(connection: Connection) -> str | None:
    """The revision recorded in the database behind ``connection`` (None: not migrated)."""
    heads = MigrationContext.configure(connection).get_current_heads()
    return ",".join(sorted(heads)) if heads else None


def upgrade(database_url: str, revision: str = "head") -> str | None:
    """Upgrade the database to ``revision``; return the revision it is at afterwards.

    Synchronous: Alembic's environment runs its own event loop, so call this from a thread
    when an event loop is already running.
    """
    config = alembic_config(database_url)
    command.upgrade(config, revision)
    return config.attributes.get(REVISION_ATTRIBUTE)


def downgrade(database_url: str, revision: str) -> str | None:
    """Downgrade the database to ``revision`` (``"base"`` removes every table)."""
    config = alembic_config(database_url)
    command.downgrade(config, revision)
    return config.attributes.get(REVISION_ATTRIBUTE)
