"""The timing helpers the benchmark scripts share (audiozoo.benchmarking)."""

from audiozoo.benchmarking import interleaved_seconds


def test_interleaved_seconds_times_the_contenders_in_turn():
    calls = []
    fns = {name: (lambda name=name: calls.append(name)) for name in ("ours", "peer")}
    seconds = interleaved_seconds(fns, repeats=3)
    assert calls == ["ours", "peer"] * 4  # one warm-up round, then three timed rounds
    assert set(seconds) == {"ours", "peer"} and all(s >= 0 for s in seconds.values())
