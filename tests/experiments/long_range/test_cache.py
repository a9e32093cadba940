"""Generated splits drawn once into data.cache_dir and read back by later launches."""

import os
import types

import numpy as np
import pytest

from experiments.configs import long_range
from experiments.long_range import cache, pathfinder
from experiments.long_range import data as data_lib


def fake_generator(tmp_path, source="def generate(): pass\n"):
    path = tmp_path / "generator.py"
    path.write_text(source)
    return types.SimpleNamespace(__file__=str(path))


def counting_draw(seed):
    calls = []

    def draw():
        calls.append(seed)
        return {
            "inputs": np.random.default_rng(seed).integers(0, 9, (4, 3)),
            "labels": np.arange(4),
        }

    return draw, calls


def test_a_split_is_drawn_once_then_read_back_equal(tmp_path):
    generator = fake_generator(tmp_path)
    draw, calls = counting_draw(3)
    first, read_first = cache.cached(str(tmp_path / "c"), "t", {"a": 1}, 3, 4, generator, draw)
    again, read_again = cache.cached(str(tmp_path / "c"), "t", {"a": 1}, 3, 4, generator, draw)
    assert (read_first, read_again, calls) == (False, True, [3])
    assert sorted(again) == ["inputs", "labels"]
    for name in first:
        np.testing.assert_array_equal(again[name], first[name])
        assert again[name].dtype == first[name].dtype
    assert [f for f in os.listdir(tmp_path / "c") if f.endswith(".partial")] == []


def test_the_key_moves_with_every_input_and_with_the_generators_source(tmp_path):
    generator = fake_generator(tmp_path)
    base = cache.key("pathfinder", {"size": 16}, 0, 100, generator)
    assert base == cache.key("pathfinder", {"size": 16}, 0, 100, generator)
    others = [
        cache.key("listops", {"size": 16}, 0, 100, generator),
        cache.key("pathfinder", {"size": 32}, 0, 100, generator),
        cache.key("pathfinder", {"size": 16}, 1, 100, generator),
        cache.key("pathfinder", {"size": 16}, 0, 101, generator),
    ]
    edited = fake_generator(tmp_path, "def generate(): return 1\n")
    others.append(cache.key("pathfinder", {"size": 16}, 0, 100, edited))
    assert len({base, *others}) == 6


def test_an_unreadable_file_is_drawn_again_and_replaced(tmp_path):
    generator = fake_generator(tmp_path)
    draw, calls = counting_draw(5)
    folder = tmp_path / "c"
    expected, _ = cache.cached(str(folder), "t", {}, 5, 4, generator, draw)
    (stored,) = os.listdir(folder)
    (folder / stored).write_bytes(b"not an npz")
    arrays, read = cache.cached(str(folder), "t", {}, 5, 4, generator, draw)
    assert (read, calls) == (False, [5, 5])
    np.testing.assert_array_equal(arrays["inputs"], expected["inputs"])
    assert cache.cached(str(folder), "t", {}, 5, 4, generator, draw)[1] is True


def test_an_empty_cache_dir_draws_every_time_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    draw, calls = counting_draw(1)
    for _ in range(2):
        assert cache.cached("", "t", {}, 1, 4, fake_generator(tmp_path), draw)[1] is False
    assert calls == [1, 1]
    assert sorted(os.listdir(tmp_path)) == ["generator.py"]


def test_a_relaunch_reads_pathfinder_from_the_cache_without_drawing(tmp_path, monkeypatch):
    config = long_range.get_config("pathfinder,tiny").data
    config.update(cache_dir=str(tmp_path / "cache"), train_size=6, validation_size=2, test_size=2)
    drawn = data_lib.load(config)
    assert len(os.listdir(tmp_path / "cache")) == 3  # one file per split

    def no_drawing(*args, **kwargs):
        raise AssertionError("drew images the cache holds")

    monkeypatch.setattr(pathfinder, "generate", no_drawing)
    read = data_lib.load(config)
    for split in data_lib.SPLITS:
        for name in drawn[split]:
            np.testing.assert_array_equal(read[split][name], drawn[split][name])
    # Other settings are other images: drawn, not served from the cache.
    config.pathfinder.distractors = 2
    with pytest.raises(AssertionError, match="drew images"):
        data_lib.load(config)


def test_sizes_that_train_cache_and_tests_do_not():
    assert long_range.get_config("pathfinder,cpu").data.cache_dir == "data/long_range"
    assert long_range.get_config("pathfinder,tiny").data.cache_dir == ""


def test_a_cache_dir_that_is_not_a_path_is_named():
    config = long_range.get_config("listops,tiny").data
    config.cache_dir = None
    with pytest.raises(ValueError, match=r"data.cache_dir=None; valid: a folder"):
        data_lib.check(config)


def test_the_key_is_16_hex_digits_whatever_the_order_of_the_settings(tmp_path):
    generator = fake_generator(tmp_path)
    one_order = cache.key("t", {"size": 16, "distractors": 2}, 0, 8, generator)
    other_order = cache.key("t", {"distractors": 2, "size": 16}, 0, 8, generator)
    assert one_order == other_order
    assert len(one_order) == 16 and int(one_order, 16) >= 0


def test_a_failed_write_leaves_no_partial_file_and_keeps_its_error(tmp_path, monkeypatch):
    def failing_savez(f, **arrays):
        f.write(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", failing_savez)
    draw, _ = counting_draw(2)
    with pytest.raises(OSError, match="disk full"):
        cache.cached(str(tmp_path / "c"), "t", {}, 2, 4, fake_generator(tmp_path), draw)
    assert os.listdir(tmp_path / "c") == []
