"""LRA's byte-level text tasks: IMDB reviews (Text) and AAN citation pairs (Retrieval).

Text is read as UTF-8 bytes, each a token 1..256 (byte + 1; 0 is padding),
cut to `max_length` bytes, as Long Range Arena does (Tay et al. 2021).

- Text: IMDB reviews (Maas et al. 2011), positive or negative, through TFDS
  by name (`imdb_reviews`, downloaded on first use), or from a folder of the
  original `aclImdb` layout (`train/pos/*.txt`, `train/neg/*.txt`, `test/...`).
- Retrieval: the ACL Anthology Network pairs LRA ships as TSV files
  (`new_aan_pairs.{train,eval,test}.tsv`; columns label, id1, id2, text1,
  text2, label 1 when one paper cites the other), read by path.

Each reader gives {"train", "test"} (and "validation" where the source has
one) -> list of examples: (text, label) for IMDB, (text1, text2, label) for AAN.
"""

from __future__ import annotations

import csv
import glob
import os

import numpy as np

AAN_FILES = {
    "train": "new_aan_pairs.train.tsv",
    "validation": "new_aan_pairs.eval.tsv",
    "test": "new_aan_pairs.test.tsv",
}
IMDB_LABELS = {"neg": 0, "pos": 1}


def byte_tokens(texts: list[str], max_length: int) -> np.ndarray:
    """Texts -> int32 `[n, max_length]`: UTF-8 bytes + 1, cut to max_length, 0-padded."""
    out = np.zeros((len(texts), max_length), np.int32)
    for row, text in enumerate(texts):
        raw = np.frombuffer(text.encode("utf-8")[:max_length], np.uint8)
        out[row, : len(raw)] = raw.astype(np.int32) + 1
    return out


def check_imdb_source(source: str) -> None:
    """ValueError naming the fix unless `source` is "tfds" or an aclImdb folder."""
    if source == "tfds":
        return
    missing = [
        f"{split}/{sub}"
        for split in ("train", "test")
        for sub in IMDB_LABELS
        if not os.path.isdir(os.path.join(source, split, sub))
    ]
    if missing:
        raise ValueError(
            f"data.text.source={source!r} is neither 'tfds' nor an aclImdb folder (it lacks "
            f"{', '.join(missing)}); valid: 'tfds' (imdb_reviews by name) or the folder of "
            f"train/pos, train/neg, test/pos, test/neg"
        )


def read_imdb(source: str, tfds_data_dir: str = "") -> dict[str, list[tuple[str, int]]]:
    """IMDB's "train" and "test" reviews with labels (1: positive)."""
    if source == "tfds":
        import tensorflow_datasets as tfds  # imported here: only this source needs it

        sources = tfds.data_source("imdb_reviews", data_dir=tfds_data_dir or None, download=True)
        out = {}
        for split in ("train", "test"):
            examples = [sources[split][i] for i in range(len(sources[split]))]
            out[split] = [(_text(e["text"]), int(e["label"])) for e in examples]
        return out
    out = {}
    for split in ("train", "test"):
        examples = []
        for sub, label in IMDB_LABELS.items():
            for path in sorted(glob.glob(os.path.join(source, split, sub, "*.txt"))):
                with open(path, encoding="utf-8", errors="replace") as f:
                    examples.append((f.read(), label))
        out[split] = examples
    return out


def _text(value) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)


def check_aan_folder(path: str) -> None:
    """ValueError naming the missing files of an AAN folder."""
    missing = [name for name in AAN_FILES.values() if not os.path.isfile(os.path.join(path, name))]
    if missing:
        raise ValueError(
            f"data.retrieval.path={path!r} lacks {', '.join(missing)}: the folder of LRA's "
            f"AAN pairs holds {', '.join(AAN_FILES.values())}"
        )


def read_aan(path: str) -> dict[str, list[tuple[str, str, int]]]:
    """The AAN pairs of each split: (text1, text2, label)."""
    csv.field_size_limit(1 << 30)  # whole papers in one field
    out = {}
    for split, name in AAN_FILES.items():
        file = os.path.join(path, name)
        examples = []
        with open(file, encoding="utf-8", errors="replace", newline="") as f:
            for line, row in enumerate(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE), 1):
                if len(row) != 5:
                    raise ValueError(
                        f"{file}:{line} has {len(row)} tab-separated fields; expected 5 "
                        f"(label, id1, id2, text1, text2)"
                    )
                try:
                    label = int(float(row[0]))
                except ValueError:
                    raise ValueError(f"{file}:{line}: label {row[0]!r} is not 0 or 1") from None
                if label not in (0, 1):
                    raise ValueError(f"{file}:{line}: label {row[0]!r} is not 0 or 1")
                examples.append((row[3], row[4], label))
        out[split] = examples
    return out
