"""Shared fixtures: a tiny WaveNet config that trains in seconds on one CPU."""

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
# One persistent XLA compilation cache for the run: both test workers and the CLI processes
# the tests start (they inherit the environment) compile the same tiny programs many times.
# Keyed by the program and the compiler, so it is never stale; set before jax is imported.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(REPO / ".pytest_cache" / "jax"))
# Every program, however quick to compile: XLA:CPU spends about 36 ms on even a one-operation
# program, and the workers and CLI processes meet the same small ones again and again.
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")


@pytest.fixture
def tiny_config():
    from helpers import tiny_config

    return tiny_config()
