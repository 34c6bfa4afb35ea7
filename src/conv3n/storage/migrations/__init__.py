"""Alembic migrations of the conv3n schema; `HEAD` is the newest revision."""

from pathlib import Path

LOCATION = Path(__file__).resolve().parent
HEAD = "0002"
