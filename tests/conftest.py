"""Shared fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

#: ../shared/data beside the repository (present on developer machines and in CI).
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path of the real recorded series; skips the test when they are absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA}")
    return SHARED_DATA
