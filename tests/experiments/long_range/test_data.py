"""The long-range tasks' splits: pixel tokens of real image files, and their settings."""

import numpy as np
import pytest

from experiments.configs import long_range
from experiments.long_range import data as data_lib
from tests.experiments.images.test_idx import write_idx_folder


def image_config(path, **data):
    config = long_range.get_config("image,tiny")
    config.data.image.path = str(path)
    config.data.update(data)
    return config.data


def test_pixels_are_tokens_one_to_256_row_by_row_after_block_means(tmp_path):
    written = write_idx_folder(tmp_path / "fm", train=30, test=10)
    splits = data_lib.load(image_config(tmp_path / "fm", validation_size=5, train_size=20))
    assert {s: len(a["labels"]) for s, a in splits.items()} == {
        "train": 20,
        "validation": 5,
        "test": 10,
    }
    images, labels = written["test"]
    # downsample=2 (the cpu and tiny sizes): each token is the rounded mean of a 2 x 2 block, + 1.
    first = images[0].astype(float)
    block_mean = (first[0, 0] + first[0, 1] + first[1, 0] + first[1, 1]) / 4
    assert splits["test"]["inputs"][0, 0] == np.rint(block_mean) + 1
    second_row = (first[2, 0] + first[2, 1] + first[3, 0] + first[3, 1]) / 4
    assert splits["test"]["inputs"][0, 14] == np.rint(second_row) + 1
    np.testing.assert_array_equal(splits["test"]["labels"], labels)
    assert splits["test"]["inputs"].shape == (10, 196)
    info = data_lib.info(image_config(tmp_path / "fm"))
    assert (info.length, info.vocab_size, info.num_classes) == (196, 257, 10)
    # Without downsampling every pixel is a token; validation and train share no image.
    full_cfg = image_config(tmp_path / "fm", validation_size=5)
    full_cfg.image.downsample = 1
    full = data_lib.load(full_cfg)
    np.testing.assert_array_equal(
        full["test"]["inputs"], images.reshape(10, -1).astype(np.int32) + 1
    )
    train_rows = {row.tobytes() for row in full["train"]["inputs"]}
    assert not any(row.tobytes() in train_rows for row in full["validation"]["inputs"])
    assert len(train_rows) == 25


def test_colour_images_become_grey_as_lra_makes_them():
    rgb = np.array([[[[255, 0, 0], [0, 255, 0]], [[0, 0, 255], [10, 20, 30]]]], np.uint8)
    grey = data_lib._grey(rgb)
    # 0.2989 R + 0.5870 G + 0.1140 B, rounded
    np.testing.assert_array_equal(grey, [[[76, 150], [29, 18]]])


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(dataset="svhn"), "unknown data.image.dataset 'svhn'; valid: fashion_mnist, cifar10"),
        (dict(downsample=0), "data.image.downsample=0; valid: 1 or more"),
        (dict(path="/nowhere"), "Fashion-MNIST folder not found: data.image.path='/nowhere'"),
    ],
)
def test_bad_image_settings_are_one_line_before_loading(tmp_path, change, message):
    config = image_config(tmp_path)
    config.image.update(change)
    with pytest.raises(ValueError, match=message) as error:
        data_lib.check(config)
    assert "\n" not in str(error.value)
