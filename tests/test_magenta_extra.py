"""The `magenta` extra (TensorFlow) is needed only to read magenta's checkpoints: without it
the import names the extra, and importing audiozoo.magenta never loads TensorFlow."""

import subprocess
import sys

import pytest

from audiozoo.magenta.checkpoint import tensorflow


def test_missing_tensorflow_is_named_with_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow", None)  # as if not installed
    with pytest.raises(RuntimeError, match=r"pip install 'audiozoo\[magenta\]'"):
        tensorflow()


def test_the_importers_load_without_tensorflow():
    code = "import sys, audiozoo.magenta, audiozoo.cli; assert 'tensorflow' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
