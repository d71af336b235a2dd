"""The review tests run the sessions of tests/session against a manual clock: the same
fixtures."""

from tests.session.conftest import session_server, team  # noqa: F401
