"""The README's Python example runs as written."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_example_runs(capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert blocks
    namespace = {}
    exec(compile(blocks[0], "README.md", "exec"), namespace)
    assert capsys.readouterr().out.strip() == "2047"
    assert len(namespace["jax"].tree.leaves(namespace["grads"])) > 0
    # The generation example continues in the same namespace.
    exec(compile(blocks[1], "README.md", "exec"), namespace)
    assert namespace["codes"].shape == (4, 16000)
    assert namespace["logits_t"].shape == (1, 256)
