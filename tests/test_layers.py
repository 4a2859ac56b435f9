"""The package's layers point one way: no module imports from a layer above its own.

Every `import audiozoo.X` / `from audiozoo.X import ...` counts, including the ones inside
functions (a late import is still a dependency; it only hides a cycle).
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "audiozoo"

# Lowest first. A unit is a top-level module or subpackage of audiozoo; it may import from
# itself and from units of lower layers only.
LAYERS = (
    ("config",),
    ("files", "interrupt", "checkpoint", "benchmarking"),
    ("audio",),
    ("nn",),
    ("models",),                       # never the trainer, the tasks or the generator
    ("generation", "data", "plots", "sample_metrics"),
    ("tasks",),                        # objectives, train state, optimiser, restore
    ("train", "inference", "evaluation", "gan_evaluation", "vocoder_evaluation",
     "magenta"),                       # importers of magenta's checkpoints (use tasks)
    ("trained", "baseline"),           # audiozoo.load(workdir); the linear baseline (uses evaluation)
    ("cli",),
)
LAYER_OF = {unit: i for i, units in enumerate(LAYERS) for unit in units}


def _unit(module: str) -> str:
    return module.split(".")[1]


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(path: Path) -> set[str]:
    """The audiozoo modules `path` imports, anywhere in the file."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            if node.module == "audiozoo":  # from audiozoo import data, models
                found |= {f"audiozoo.{alias.name}" for alias in node.names}
    return {name for name in found if name.startswith("audiozoo.")}


def _files():
    return sorted(p for p in PACKAGE.rglob("*.py") if p.name != "__init__.py" or p.parent != PACKAGE)


def test_every_unit_has_a_layer():
    units = {_unit(_module_name(p)) for p in _files()}
    assert units - set(LAYER_OF) == set(), "add new modules to LAYERS"


@pytest.mark.parametrize("path", _files(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_imports_a_layer_above_it(path):
    unit = _unit(_module_name(path))
    upward = sorted(name for name in _imported(path) if _unit(name) != unit
                    and LAYER_OF[_unit(name)] >= LAYER_OF[unit])
    assert not upward, f"{unit} (layer {LAYER_OF[unit]}) imports {upward}"


def test_the_checker_sees_late_imports(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from audiozoo.train.loop import Trainer\n    import audiozoo.cli\n")
    assert _imported(source) == {"audiozoo.train.loop", "audiozoo.cli"}
