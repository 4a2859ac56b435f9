"""Labelled datasets: the ESC-50 CSV layout and the Speech Commands folder layout."""

import numpy as np
import pytest
import soundfile as sf

from audiozoo.config import base_config
from audiozoo.data import DataError, make_dataset


def _tone(path, freq, rate=16000, seconds=0.25):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, 0.3 * np.sin(2 * np.pi * freq * np.arange(int(rate * seconds)) / rate), rate)


def _esc50(root, rows):
    (root / "meta").mkdir(parents=True)
    lines = ["filename,fold,target,category,esc10,src_file,take"]
    for name, fold, category in rows:
        _tone(root / "audio" / name, 200 + 10 * len(lines))
        lines.append(f"{name},{fold},0,{category},False,x,A")
    (root / "meta" / "esc50.csv").write_text("\n".join(lines) + "\n")


def _config(**data):
    config = base_config()
    config.data.update(dict(segment_length=2000), **data)
    return config.data


def test_esc50_folds_and_labels(tmp_path):
    _esc50(tmp_path, [("1-a.wav", 1, "dog"), ("1-b.wav", 1, "rain"), ("2-c.wav", 2, "dog"),
                      ("5-d.wav", 5, "rain"), ("5-e.wav", 5, "dog")])
    train = make_dataset(_config(name="csv", root=str(tmp_path)), "train")
    test = make_dataset(_config(name="csv", root=str(tmp_path)), "eval")
    assert (len(train), len(test)) == (3, 2)
    assert train.classes == test.classes == ("dog", "rain")
    assert [int(l) for l in train.labels] == [0, 1, 0] and [int(l) for l in test.labels] == [1, 0]
    example = train[1]
    assert example["audio"].shape == (2000,) and int(example["label"]) == 1


def test_multi_label_table_gives_multi_hot(tmp_path):
    _esc50(tmp_path, [("a.wav", 1, "dog;bark"), ("b.wav", 1, "rain"), ("c.wav", 5, "bark")])
    data = make_dataset(_config(name="csv", root=str(tmp_path), multi_label=True), "train")
    assert data.classes == ("bark", "dog", "rain")
    np.testing.assert_array_equal(data.labels, [[1, 1, 0], [0, 0, 1]])


def test_csv_errors_name_the_problem(tmp_path):
    with pytest.raises(DataError, match="esc50.csv.*does not exist"):
        make_dataset(_config(name="csv", root=str(tmp_path)), "train")
    _esc50(tmp_path, [("a.wav", 1, "dog")])
    with pytest.raises(DataError, match=r"no column\(s\) \['label'\]"):
        make_dataset(_config(name="csv", root=str(tmp_path), label_column="label"), "train")
    with pytest.raises(DataError, match="no rows of the eval split"):
        make_dataset(_config(name="csv", root=str(tmp_path)), "eval")
    (tmp_path / "audio" / "a.wav").unlink()
    with pytest.raises(Exception, match="a.wav"):
        make_dataset(_config(name="csv", root=str(tmp_path)), "train")


def test_speech_commands_layout(tmp_path):
    for word in ("yes", "no"):
        for i in range(3):
            _tone(tmp_path / word / f"spk{i}_nohash_0.wav", 300 + i)
    _tone(tmp_path / "_background_noise_" / "white.wav", 100, seconds=1.0)
    (tmp_path / "testing_list.txt").write_text("yes/spk2_nohash_0.wav\nno/spk2_nohash_0.wav\n")
    config = _config(name="wav_folder", root=str(tmp_path), labels=True, eval_list="testing_list.txt")
    train, test = make_dataset(config, "train"), make_dataset(config, "eval")
    assert train.classes == test.classes == ("no", "yes")
    assert len(train) == 4 and len(test) == 2
    assert all("_background_noise_" not in f for f in train.files)
    assert sorted(f.split("/")[-2] for f in test.files) == ["no", "yes"]
    config.eval_list = "missing.txt"
    with pytest.raises(DataError, match="missing.txt"):
        make_dataset(config, "eval")
