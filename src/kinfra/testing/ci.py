"""A tool a test needs is missing: under CI (``CI=true``) that is a failure,
since `./scripts/test.sh` installs everything; elsewhere the test is skipped
with the command that installs it."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def unavailable(message: str) -> NoReturn:
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message)
    pytest.skip(message)
