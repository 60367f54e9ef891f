"""Shared fixtures: where the real footage is, and databases to test against."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("GEMWATCH_TEST_DATA", REPO_ROOT.parent / "shared" / "data"))


def data_file(relative: str) -> Path:
    """A file of the shared real footage; skips the test with a clear message when absent."""
    path = DATA_DIR / relative
    if not path.exists():
        pytest.skip(f"real test footage not found at {path} (set GEMWATCH_TEST_DATA)")
    return path


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture
def postgres_url() -> str:
    """A fresh PostgreSQL database on the local server (trust auth), dropped afterwards."""
    if not port_open("127.0.0.1", 5432):
        pytest.skip("PostgreSQL is not running on 127.0.0.1:5432")
    import uuid

    import psycopg

    name = f"gemwatch_test_{uuid.uuid4().hex[:10]}"
    admin = "postgresql://postgres@127.0.0.1:5432/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
