"""Shared fixtures: a tiny WaveNet config that trains in seconds on one CPU."""

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))


@pytest.fixture
def tiny_config():
    from helpers import tiny_config

    return tiny_config()
