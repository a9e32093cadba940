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


def write_imdb(folder, reviews):
    """An aclImdb-layout folder: reviews {split: [(text, label)]}."""
    for split, examples in reviews.items():
        for sub in ("pos", "neg"):
            (folder / split / sub).mkdir(parents=True, exist_ok=True)
        for i, (text, label) in enumerate(examples):
            (folder / split / ("pos" if label else "neg") / f"{i}_7.txt").write_text(text)


def write_aan(folder, pairs):
    """LRA's AAN TSV files: pairs {split: [(label, text1, text2)]}."""
    folder.mkdir(parents=True, exist_ok=True)
    for split, name in data_lib.documents.AAN_FILES.items():
        rows = [
            f"{label}\tid{i}a\tid{i}b\t{a}\t{b}" for i, (label, a, b) in enumerate(pairs[split])
        ]
        (folder / name).write_text("\n".join(rows) + "\n")


def text_config(task, **data):
    config = long_range.get_config(f"{task},tiny")
    config.data.update(data)
    return config.data


def test_reviews_are_utf8_bytes_plus_one_cut_to_max_length(tmp_path):
    write_imdb(
        tmp_path / "aclImdb",
        {
            "train": [(f"good film {i}", 1) for i in range(6)] + [("bad", 0)] * 6,
            "test": [("été", 1), ("x" * 100, 0)],
        },
    )
    config = text_config("text", validation_size=2, train_size=8)
    config.text.source = str(tmp_path / "aclImdb")
    data_lib.check(config)
    splits = data_lib.load(config)
    assert {s: len(a["labels"]) for s, a in splits.items()} == {
        "train": 8,
        "validation": 2,
        "test": 2,
    }
    # The test split keeps the folder's order: neg files, then pos (sorted names per label).
    neg, pos = splits["test"]["inputs"]
    assert splits["test"]["labels"].tolist() == [0, 1]
    assert neg.shape == (64,) and (neg == ord("x") + 1).all()  # cut to max_length=64
    # "été" is 5 bytes in UTF-8: c3 a9 74 c3 a9, each + 1; then padding.
    assert pos[:6].tolist() == [0xC4, 0xAA, 0x75, 0xC4, 0xAA, 0]


def test_aan_pairs_keep_both_documents_and_their_label(tmp_path):
    pairs = {
        "train": [(1, "cites", "cited"), (0.0, "a", "b")],
        "validation": [(1.0, "v1", "v2")],
        "test": [(0, "t1", "t22")],
    }
    write_aan(tmp_path / "aan", pairs)
    config = text_config("retrieval")
    config.retrieval.path = str(tmp_path / "aan")
    data_lib.check(config)
    splits = data_lib.load(config)
    assert splits["train"]["labels"].tolist() == [1, 0]
    first, second = splits["train"]["inputs"][0], splits["train"]["second"][0]
    assert bytes((first[first > 0] - 1).astype(np.uint8)) == b"cites"
    assert bytes((second[second > 0] - 1).astype(np.uint8)) == b"cited"
    assert splits["test"]["second"][0, :3].tolist() == [ord("t") + 1, ord("2") + 1, ord("2") + 1]
    assert data_lib.info(config).kind == "match"


@pytest.mark.parametrize(
    "task, change, message",
    [
        ("text", dict(source="/nowhere"), "data.text.source='/nowhere' is neither 'tfds' nor"),
        ("text", dict(max_length=0), "data.text.max_length=0; valid: 1 or more"),
        ("retrieval", dict(path="/nowhere"), "lacks new_aan_pairs.train.tsv, new_aan_pairs.eval"),
    ],
)
def test_bad_document_settings_are_one_line(task, change, message):
    config = text_config(task)
    config[task].update(change)
    with pytest.raises(ValueError, match=message) as error:
        data_lib.check(config)
    assert "\n" not in str(error.value)


def test_a_malformed_tsv_line_is_named(tmp_path):
    write_aan(tmp_path, {"train": [(1, "a", "b")], "validation": [], "test": []})
    with open(tmp_path / data_lib.documents.AAN_FILES["train"], "a") as f:
        f.write("1\tonly\tthree\n")
    with pytest.raises(ValueError, match=r"new_aan_pairs.train.tsv:2 has 3 tab-separated fields"):
        data_lib.documents.read_aan(str(tmp_path))


def test_a_test_split_sorted_by_class_is_sampled_not_cut(tmp_path):
    """aclImdb lists negative reviews, then positive: the first N would all be negative."""
    reviews = [(f"review {i}", int(i >= 20)) for i in range(40)]
    write_imdb(tmp_path / "aclImdb", {"train": reviews, "test": reviews})
    config = text_config("text", validation_size=2, test_size=10)
    config.text.source = str(tmp_path / "aclImdb")
    labels = data_lib.load(config)["test"]["labels"]
    assert len(labels) == 10 and 0 < labels.sum() < 10
    again = data_lib.load(config)["test"]["inputs"]
    np.testing.assert_array_equal(again, data_lib.load(config)["test"]["inputs"])


def test_mqar_mixes_pair_counts_in_training_only():
    config = long_range.get_config("mqar,tiny").data
    config.update(train_size=200, validation_size=40, test_size=40)
    config.mqar.update(vocab_size=24, num_pairs=3, length=16, train_min_pairs=1)
    splits = data_lib.load(config)
    train_counts = splits["train"]["queries"].sum(axis=1)
    assert set(train_counts.tolist()) == {1, 2, 3}
    for split in ("validation", "test"):  # recall is measured at num_pairs
        assert (splits[split]["queries"].sum(axis=1) == 3).all()
    # 0 keeps num_pairs in training as well.
    config.mqar.train_min_pairs = 0
    assert (data_lib.load(config)["train"]["queries"].sum(axis=1) == 3).all()


@pytest.mark.parametrize("value", [-1, 4])
def test_bad_mqar_train_min_pairs_is_one_line(value):
    config = long_range.get_config("mqar,tiny").data
    config.mqar.update(num_pairs=3, length=16, vocab_size=24)
    config.mqar.train_min_pairs = value
    with pytest.raises(ValueError, match=r"data.mqar.train_min_pairs=.*valid: 0 .* to num_pairs=3"):
        data_lib.check(config)
