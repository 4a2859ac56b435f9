"""A linear baseline for every classifier table: logistic regression on log-mel statistics.

Each clip becomes the mean and the standard deviation over time of its log-mel frames (the
"logmel" front end's defaults: 64 Slaney mel bands, 32 ms frames every 10 ms, in dB), 128
numbers that ignore the order of the frames. The features are standardised with the training
set's mean and std, and a multinomial logistic regression (softmax over classes, weights W and
biases b) minimises the mean cross-entropy over the training set plus l2 / 2 ||W||^2 (the
biases are not penalised), by L-BFGS (optax.lbfgs with its zoom line search) on the whole set;
the loss is strictly convex, so the fit is unique. scikit-learn's LogisticRegression with its
default C = 1 on N examples is the same model with l2 = 1 / N.

`run_baseline(config)` fits it on the config's training split and reports on its eval split
(or another labelled folder) in the same JSON report as `audiozoo evaluate`, so a table of
trained classifiers carries the baseline measured on exactly their data.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax

from audiozoo.audio.frontend import Frontend, default_frontend_config
from audiozoo.config import ConfigError
from audiozoo.data import labelled_folder, label_names, make_dataset
from audiozoo.evaluation import data_label_key, report_of
from audiozoo.tasks.classify import LabelSet, resolve_label_key

MODEL_NAME = "baseline: logistic regression on log-mel mean and std"
# L-BFGS iterations: the fits here (a few thousand clips, 128 features) converge in far fewer.
LBFGS_STEPS = 200


def logmel_frontend(sample_rate: int) -> Frontend:
    """The log-mel front end the baseline's features come from, at `sample_rate`."""
    config = default_frontend_config("logmel")
    config.update(sample_rate=sample_rate, f_max=min(config.f_max, sample_rate / 2))
    return Frontend.from_config(config)


def clip_features(dataset, frontend: Frontend, label_key: str,
                  batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """(float32 [N, 2 * bins] per-clip mean and std of the log-mel frames, labels [N]) of
    every example of `dataset` in index order, each with its fixed crop (`dataset[i]`)."""
    @jax.jit
    def stats(audio):
        frames = frontend(audio)
        return jnp.concatenate([frames.mean(axis=1), frames.std(axis=1)], axis=-1)

    features, labels = [], []
    for start in range(0, len(dataset), batch_size):
        examples = [dataset[i] for i in range(start, min(start + batch_size, len(dataset)))]
        features.append(np.asarray(stats(np.stack([e["audio"] for e in examples]))))
        labels.append(np.array([e[label_key] for e in examples]))
    return np.concatenate(features), np.concatenate(labels)


@dataclasses.dataclass(frozen=True)
class LogisticRegression:
    """Standardisation (mean, scale) and the softmax layer (weights [features, classes], bias)."""

    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: np.ndarray

    def logits(self, features: np.ndarray) -> np.ndarray:
        return ((features - self.mean) / self.scale) @ self.weights + self.bias

    @classmethod
    def fit(cls, features: np.ndarray, labels: np.ndarray, num_classes: int,
            l2: float = 1e-3) -> LogisticRegression:
        """The minimiser of mean cross-entropy + l2 / 2 ||W||^2 on standardised features."""
        if l2 < 0:
            raise ValueError(f"l2={l2} must be >= 0")
        mean = features.mean(axis=0)
        scale = np.where(features.std(axis=0) > 0, features.std(axis=0), 1.0)  # constant features
        x = jnp.asarray((features - mean) / scale, jnp.float32)
        weights, bias = _lbfgs(x, jnp.asarray(labels, jnp.int32), num_classes, float(l2))
        return cls(mean, scale, np.asarray(weights), np.asarray(bias))


def _lbfgs(x, labels, num_classes: int, l2: float):
    def loss(params):
        weights, bias = params
        logits = x @ weights + bias
        ce = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
        return ce + 0.5 * l2 * jnp.sum(weights**2)

    solver = optax.lbfgs()
    value_and_grad = optax.value_and_grad_from_state(loss)

    @jax.jit
    def solve(params):
        def step(carry, _):
            params, state = carry
            value, grad = value_and_grad(params, state=state)
            updates, state = solver.update(grad, state, params, value=value, grad=grad, value_fn=loss)
            return (optax.apply_updates(params, updates), state), None

        (params, _), _ = jax.lax.scan(step, (params, solver.init(params)), length=LBFGS_STEPS)
        return params

    start = (jnp.zeros((x.shape[1], num_classes)), jnp.zeros((num_classes,)))
    return solve(start)


def run_baseline(config, *, split: str = "eval", data: str | None = None, l2: float = 1e-3,
                 batch_size: int = 64) -> dict:
    """Fits the baseline on `config`'s training split; the `audiozoo evaluate` report of it on
    the `split` of the config's data, or on every file of the labelled folder `data`."""
    if config.task.get("multi_label", False):
        raise ConfigError("the baseline is a single-label classifier (softmax); this config's "
                          "data is multi-label (task.multi_label=True)")
    key = resolve_label_key(config)
    train = make_dataset(config.data, "train")
    names = label_names(train, key)
    if key not in train[0] or not names:
        raise ConfigError(f"the training data has no named {key!r} classes to fit the baseline "
                          "on; set --config.task.label_key (and --config.data.labels=True for a "
                          "folder of class subfolders)")
    frontend = logmel_frontend(config.data.sample_rate)
    model = LogisticRegression.fit(*clip_features(train, frontend, key, batch_size), len(names), l2)
    dataset = labelled_folder(config.data, data) if data else make_dataset(config.data, split)
    eval_key = data_label_key(dataset, key)
    features, labels = clip_features(dataset, frontend, eval_key, batch_size)
    return report_of(model.logits(features), labels, dataset, eval_key,
                     LabelSet(tuple(names), key, False), model=MODEL_NAME, data=data or split)
