"""The in-project baseline: logistic regression on log-mel mean and std (`audiozoo baseline`)."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from audiozoo.baseline import LogisticRegression, run_baseline
from audiozoo.cli import main
from audiozoo.config import ConfigError, load_config

CONFIG = "configs/classify_tiny.py:resnet18"


def test_fit_separates_separable_classes_and_reaches_the_optimum():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(4, 6)) * 3
    labels = rng.integers(0, 4, 400)
    features = centres[labels] + rng.normal(size=(400, 6)) + 50.0  # far from zero: standardised
    model = LogisticRegression.fit(features, labels, 4, l2=1e-2)
    assert np.mean(model.logits(features).argmax(-1) == labels) > 0.97

    def objective(params):
        weights, bias = params
        x = jnp.asarray((features - model.mean) / model.scale, jnp.float32)
        ce = optax.softmax_cross_entropy_with_integer_labels(x @ weights + bias, labels).mean()
        return ce + 0.5e-2 * jnp.sum(weights**2)

    gradient = jax.grad(objective)((jnp.asarray(model.weights), jnp.asarray(model.bias)))
    assert max(float(jnp.max(jnp.abs(g))) for g in gradient) < 1e-4  # stationary: the minimum


def test_baseline_on_the_synthetic_notes_reports_like_evaluate(tmp_path, capsys):
    report = tmp_path / "baseline.json"
    assert main(["baseline", "--config", CONFIG, "--report", str(report), "--config.data.num_train=200",
                 "--config.data.num_eval=100"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("eval: 100 examples, accuracy ") and f"wrote {report}" in out
    data = json.loads(report.read_text())
    assert data["accuracy"] > 0.6  # chance is 0.2: the five timbres differ in their spectra
    assert data["classes"] == ["sine", "square", "saw", "pluck", "bell"]
    assert {"mAP", "macro", "per_class", "confusion", "files"} <= set(data)


def test_baseline_needs_single_labels_and_a_source_of_data(capsys):
    config = load_config(CONFIG)
    config.task.multi_label = True
    with pytest.raises(ConfigError, match="single-label"):
        run_baseline(config)
    assert main(["baseline"]) == 2
    assert "--config" in capsys.readouterr().err
