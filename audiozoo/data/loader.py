"""Deterministic, resumable, per-host batching.

The batch at a training step is a pure function of (dataset, seed, step, host):

* epoch ``e`` visits the dataset in the order ``default_rng([seed, e]).permutation(N)``;
* the epochs are laid end to end and step ``s`` takes global positions
  ``[s * B, (s + 1) * B)``. With ``drop_remainder=True`` (the default) each epoch
  contributes ``N // B`` whole batches and its last ``N % B`` examples are dropped;
  with ``drop_remainder=False`` nothing is dropped and a batch may span two epochs
  (batches keep a fixed shape either way, so the train step never recompiles);
* host ``p`` of ``P`` gets the contiguous slice ``[p * B / P, (p + 1) * B / P)`` of
  the global batch, the layout ``jax.make_array_from_process_local_data`` expects;
* example ``i`` of epoch ``e`` is built with ``default_rng([seed, e, i])``, so random
  crops differ between epochs but not between runs.

Resuming at step ``k`` (the data position a checkpoint stores is just the step)
therefore yields exactly the batches an uninterrupted run would have seen.
"""

from __future__ import annotations

import functools
import os
import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from audiozoo.data.base import DataError, Dataset, Example

Batch = dict[str, np.ndarray]


class BatchLoader:
    """Batches of ``dataset`` for this host; see the module docstring.

    Args:
      dataset: anything following the ``audiozoo.data.base.Dataset`` protocol.
      global_batch_size: examples per step summed over all hosts.
      seed: non-negative int behind the order and the per-example rngs.
      process_index, process_count: this host and the number of hosts
        (``jax.process_index()``, ``jax.process_count()``).
      drop_remainder: drop each epoch's incomplete last batch (see above).
      num_workers: threads building the examples of one batch in ``iterate``.
      what: the data in error messages (e.g. "the eval split").
    """

    def __init__(
        self,
        dataset: Dataset,
        *,
        global_batch_size: int,
        seed: int,
        process_index: int = 0,
        process_count: int = 1,
        drop_remainder: bool = True,
        num_workers: int | None = None,
        what: str = "the dataset",
    ):
        _check_sizes(len(dataset), global_batch_size, process_index, process_count, what)
        if int(seed) < 0:
            raise DataError(f"seed must be >= 0, got {seed}; set a non-negative --config.data.seed")
        self.dataset = dataset
        self.global_batch_size = int(global_batch_size)
        self.seed = int(seed)
        self.process_index = int(process_index)
        self.process_count = int(process_count)
        self.drop_remainder = bool(drop_remainder)
        self.num_workers = num_workers or min(8, os.cpu_count() or 1)
        # Per instance (not a method decorator) so the cache dies with the loader.
        self._permutation = functools.lru_cache(maxsize=4)(self._make_permutation)

    @property
    def host_batch_size(self) -> int:
        return self.global_batch_size // self.process_count

    @property
    def steps_per_epoch(self) -> float:
        """Steps per pass over the data (fractional when batches span epochs)."""
        if self.drop_remainder:
            return len(self.dataset) // self.global_batch_size
        return len(self.dataset) / self.global_batch_size

    def position(self, step: int) -> tuple[int, int]:
        """(epoch, offset within that epoch's permutation) of the first example of ``step``."""
        if step < 0:
            raise DataError(f"step must be >= 0, got {step}")
        if self.drop_remainder:
            epoch, batch = divmod(step, len(self.dataset) // self.global_batch_size)
            return epoch, batch * self.global_batch_size
        return divmod(step * self.global_batch_size, len(self.dataset))

    def host_indices(self, step: int) -> list[tuple[int, int]]:
        """(epoch, dataset index) of each example in this host's part of ``step``."""
        epoch, offset = self.position(step)
        start = offset + self.process_index * self.host_batch_size
        n = len(self.dataset)
        # Positions past the epoch's end continue into the next epoch's permutation;
        # with drop_remainder a batch never gets there.
        return [
            (epoch + later, int(self._permutation(epoch + later)[at]))
            for later, at in (divmod(pos, n) for pos in range(start, start + self.host_batch_size))
        ]

    def host_batch(self, step: int) -> Batch:
        """This host's slice of the global batch at ``step``, stacked along axis 0."""
        return self._build(step, map)

    def iterate(self, start_step: int = 0, stop_step: int | None = None) -> Iterator[Batch]:
        """Host batches for steps ``start_step, start_step + 1, ...`` (up to ``stop_step``).

        Batches are prepared two ahead in a background thread, their examples built in
        a small thread pool (decoding and synthesis release the GIL). Closing the
        generator (or dropping it) stops the thread; an error while building a batch
        is raised here, at the step it belongs to.
        """
        prefetch = _Prefetcher(self, start_step, stop_step)
        try:
            yield from prefetch
        finally:
            prefetch.close()

    def _make_permutation(self, epoch: int) -> np.ndarray:
        return np.random.default_rng([self.seed, epoch]).permutation(len(self.dataset))

    def _example(self, item: tuple[int, int]) -> Example:
        epoch, index = item
        return self.dataset.example(index, np.random.default_rng([self.seed, epoch, index]))

    def _build(self, step: int, map_fn: Callable) -> Batch:
        items = self.host_indices(step)
        return _stack(list(map_fn(self._example, items)), [i for _, i in items])


class _Prefetcher:
    """Builds batches in a daemon thread into a queue of size 2; iterate it, then close()."""

    _DONE = object()

    def __init__(self, loader: BatchLoader, start_step: int, stop_step: int | None):
        self._queue: queue.Queue = queue.Queue(maxsize=2)
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(loader.num_workers, thread_name_prefix="audiozoo-data")
        self._thread = threading.Thread(
            target=self._run, args=(loader, start_step, stop_step), daemon=True, name="audiozoo-prefetch"
        )
        self._thread.start()

    def __iter__(self) -> Iterator[Batch]:
        while True:
            item = self._queue.get()
            if item is self._DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _run(self, loader: BatchLoader, step: int, stop_step: int | None) -> None:
        try:
            while not self._stop.is_set() and (stop_step is None or step < stop_step):
                self._put(loader._build(step, self._pool.map))
                step += 1
            self._put(self._DONE)
        except BaseException as e:  # handed to the consumer, which re-raises it
            self._put(e)

    def _put(self, item: object) -> None:
        # Poll so that close() is noticed while the queue is full.
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.05)
                return
            except queue.Full:
                pass


def _check_sizes(num_examples: int, batch_size: int, process_index: int, process_count: int,
                 what: str) -> None:
    if batch_size < 1 or process_count < 1:
        raise DataError(
            f"global_batch_size ({batch_size}) and process_count ({process_count}) must be positive"
        )
    if batch_size % process_count:
        raise DataError(
            f"global_batch_size {batch_size} does not divide by process_count {process_count}; "
            "set --config.train.batch_size to a multiple of the number of hosts"
        )
    if not 0 <= process_index < process_count:
        raise DataError(f"process_index {process_index} is outside [0, {process_count})")
    if num_examples < batch_size:
        raise DataError(
            f"{what} has {num_examples} example(s), fewer than global_batch_size {batch_size}; "
            "lower --config.train.batch_size or add data"
        )


def _stack(examples: list[Example], indices: list[int]) -> Batch:
    """Stacks examples along a new axis 0, naming the example whose structure differs."""
    expected = _structure(examples[0])
    for example, index in zip(examples, indices):
        if _structure(example) != expected:
            raise DataError(
                f"dataset example {index} has structure {_structure(example)} but example "
                f"{indices[0]} has {expected}; a dataset's examples must all have the same "
                "keys, shapes and dtypes"
            )
    return {k: np.stack([e[k] for e in examples]) for k in examples[0]}


def _structure(example: Example) -> dict[str, tuple[tuple[int, ...], str]]:
    return {k: (np.shape(v), np.asarray(v).dtype.name) for k, v in example.items()}
