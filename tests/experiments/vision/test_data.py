"""Image datasets as uint8 arrays: digits, idx files, batches and their state."""

import os

import ml_collections
import numpy as np
import pytest

from experiments.vision import data
from tests.experiments.images.test_idx import write_idx_folder


def data_config(**overrides):
    config = dict(
        name="digits",
        path="",
        tfds_data_dir="",
        seed=0,
        validation_size=180,
        test_size=360,
        train_size=0,
    )
    config.update(overrides)
    return ml_collections.ConfigDict(config)


def test_digits_are_uint8_images_in_three_disjoint_splits():
    splits, info = data.load(data_config())
    assert {k: len(v) for k, v in splits.items()} == {"train": 1257, "validation": 180, "test": 360}
    for split in splits.values():
        assert split.images.dtype == np.uint8 and split.images.shape[1:] == (8, 8, 1)
        assert split.labels.dtype == np.int32 and set(split.labels) == set(range(10))
    assert info.image_shape == (8, 8, 1) and info.num_classes == 10
    assert splits["train"].images.max() == 255
    # Disjoint: no image of the test split is the same array in the training split by index.
    flat = {k: {v.tobytes() for v in s.images} for k, s in splits.items()}
    assert len(flat["test"] - flat["train"]) > 300  # digits repeat only rarely
    again, _ = data.load(data_config())
    np.testing.assert_array_equal(again["test"].labels, splits["test"].labels)
    other, _ = data.load(data_config(seed=1))
    assert not np.array_equal(other["test"].labels, splits["test"].labels)


@pytest.mark.parametrize("gz", [True, False], ids=["gzipped", "plain"])
def test_idx_folder_loads_with_a_held_out_validation_split(tmp_path, gz):
    arrays = write_idx_folder(tmp_path / "fm", gz=gz)
    splits, info = data.load(
        data_config(name="fashion_mnist", path=str(tmp_path / "fm"), validation_size=5)
    )
    assert {k: len(v) for k, v in splits.items()} == {"train": 25, "validation": 5, "test": 10}
    np.testing.assert_array_equal(splits["test"].images[..., 0], arrays["test"][0])
    np.testing.assert_array_equal(splits["test"].labels, arrays["test"][1])
    assert info.class_names[0] == "T-shirt/top" and info.image_shape == (28, 28, 1)
    train_and_validation = np.concatenate([splits["train"].labels, splits["validation"].labels])
    assert sorted(train_and_validation) == sorted(arrays["train"][1])


def test_missing_folder_or_file_names_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        data.load(data_config(name="fashion_mnist", path=str(tmp_path / "nowhere")))
    write_idx_folder(tmp_path)
    os.remove(tmp_path / "t10k-labels-idx1-ubyte.gz")
    with pytest.raises(FileNotFoundError, match=r"t10k-labels-idx1-ubyte\[.gz\] not found"):
        data.load(data_config(name="fashion_mnist", path=str(tmp_path)))


def test_batches_cover_each_epoch_once_and_resume_exactly():
    split = data.Split(np.arange(10, dtype=np.uint8).reshape(10, 1, 1, 1), np.arange(10))
    stream = data.BatchIterator(split, batch_size=3, seed=4)
    first_epoch = np.concatenate([next(stream)["labels"] for _ in range(3)])
    assert len(set(first_epoch)) == 9  # the tenth is the skipped tail
    state = stream.get_state()
    assert state == {"seed": 4, "epoch": 0, "position": 9}
    ahead = [next(stream)["labels"] for _ in range(5)]
    resumed = data.BatchIterator(split, batch_size=3, seed=4)
    resumed.set_state(state)
    for want in ahead:
        np.testing.assert_array_equal(next(resumed)["labels"], want)
    assert resumed.get_state()["epoch"] == 2
    with pytest.raises(ValueError, match="saved with seed 4, this run uses 5"):
        data.BatchIterator(split, batch_size=3, seed=5).set_state(state)
    with pytest.raises(ValueError, match="batch size 11 must be between 1 and the 10"):
        data.BatchIterator(split, batch_size=11, seed=0)


def test_eval_batches_pad_the_last_batch():
    split = data.Split(np.ones((7, 2, 2, 1), np.uint8), np.arange(7, dtype=np.int32))
    batches = data.eval_batches(split, 3)
    assert [b["images"].shape for b in batches] == [(3, 2, 2, 1)] * 3
    assert [int(b["valid"].sum()) for b in batches] == [3, 3, 1]
    np.testing.assert_array_equal(
        np.concatenate([b["labels"][b["valid"]] for b in batches]), split.labels
    )
