"""Tests for the array_record TFDS builder of the toy corpus."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from experiments.text import toy_corpus
from experiments.translation import tfds_builder

TINY = dict(
    seed=5,
    train_size=12,
    validation_size=4,
    test_size=4,
    test_long_size=3,
    train_max_words=6,
    long_max_words=10,
)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """(data_dir, builder) of the tiny corpus, prepared once for the module."""
    data_dir = str(tmp_path_factory.mktemp("tfds"))
    builder = tfds_builder.prepare_toy_translation(
        data_dir, tfds_builder.toy_translation_config(**TINY)
    )
    return data_dir, builder


def test_reading_back_gives_exactly_the_generated_pairs(prepared):
    _, builder = prepared
    expected = toy_corpus.make_splits(**TINY)
    read = tfds_builder.read_splits(builder)
    assert set(read) == set(tfds_builder.SPLIT_NAMES)
    for split in tfds_builder.SPLIT_NAMES:
        assert read[split] == expected[split], split
    assert any(pair.alignment for pair in read["train"])


def test_files_are_array_record_under_config_directory(prepared):
    data_dir, builder = prepared
    config_name = tfds_builder.toy_translation_config(**TINY).name
    version_dir = os.path.join(data_dir, "toy_translation", config_name, "1.0.0")
    files = os.listdir(version_dir)
    for split in tfds_builder.SPLIT_NAMES:
        assert any(f.startswith(f"toy_translation-{split}.array_record") for f in files), files
    assert not any("tfrecord" in f for f in files)
    assert os.path.samefile(str(builder.data_dir), version_dir)


def test_preparing_again_reuses_the_files(prepared):
    data_dir, builder = prepared
    record_file = next(f for f in os.listdir(builder.data_dir) if "train.array_record" in f)
    record_path = os.path.join(builder.data_dir, record_file)
    modified = os.stat(record_path).st_mtime_ns
    again = tfds_builder.ToyTranslation(
        data_dir=data_dir,
        config=tfds_builder.toy_translation_config(**TINY),
        file_format="array_record",
    )
    assert again.is_prepared()
    again.download_and_prepare()
    assert os.stat(record_path).st_mtime_ns == modified


def test_config_names_differ_for_different_parameters():
    base = tfds_builder.toy_translation_config(**TINY)
    # Every parameter in its place, and 8 hex digits of what the generator makes.
    assert base.name == "seed5-train12-validation4-test4-long3-words6to10-gen58faa3a7"
    changed = {
        field: tfds_builder.toy_translation_config(**{**TINY, field: TINY[field] + 1})
        for field in TINY
    }
    names = [base.name] + [config.name for config in changed.values()]
    assert len(set(names)) == len(TINY) + 1
    for field, config in changed.items():
        assert getattr(config, field) == TINY[field] + 1
    # A generator that changed its output would change the fingerprint alone.
    assert changed["seed"].name.rsplit("-gen", 1)[1] != base.name.rsplit("-gen", 1)[1]


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"train_size": 0}, "train_size"),
        ({"test_size": -1}, "test_size"),
        ({"train_max_words": 12, "long_max_words": 10}, "train_max_words=12"),
        ({"seed": -3}, "seed"),
    ],
)
def test_invalid_config_values_raise(bad, message):
    with pytest.raises(ValueError, match=message):
        tfds_builder.toy_translation_config(**{**TINY, **bad})


def test_prepare_and_read_do_not_import_tensorflow(tmp_path):
    script = textwrap.dedent(
        f"""
        import json, sys
        from experiments.translation import tfds_builder
        splits = tfds_builder.load_toy_translation({str(tmp_path)!r}, **{TINY!r})
        # A second load reads the prepared files.
        splits = tfds_builder.load_toy_translation({str(tmp_path)!r}, **{TINY!r})
        loaded = sorted(m for m in sys.modules if m == "tensorflow" or m.startswith("tensorflow."))
        print(json.dumps({{"sizes": {{k: len(v) for k, v in splits.items()}}, "tf": loaded}}))
        """
    )
    repo_root = os.path.dirname(
        os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=repo_root, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["tf"] == []
    assert report["sizes"] == {"train": 12, "validation": 4, "test": 4, "test_long": 3}
