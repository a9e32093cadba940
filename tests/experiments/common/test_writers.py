"""Tests for experiments.common.writers."""

import json
import struct

import jax.numpy as jnp
import numpy as np
import pytest
from tensorboardX.proto import event_pb2

from experiments.common import writers


def _read_events(workdir):
    """All events from the TensorBoard files under workdir (TFRecord framing)."""
    event_files = sorted((workdir / "tensorboard").glob("events.out.tfevents.*"))
    events = []
    for path in event_files:
        data = path.read_bytes()
        offset = 0
        while offset < len(data):
            (length,) = struct.unpack("<Q", data[offset : offset + 8])
            payload = data[offset + 12 : offset + 12 + length]  # skip length + its crc
            events.append(event_pb2.Event.FromString(payload))
            offset += 12 + length + 4  # payload crc
    return events


def _scalar_events(workdir):
    return [
        (event.step, value.tag, value.simple_value)
        for event in _read_events(workdir)
        for value in event.summary.value
        if value.HasField("simple_value")
    ]


def test_scalars_round_trip_through_jsonl(tmp_path):
    with writers.MetricWriter(tmp_path) as writer:
        writer.write_scalars(1, {"loss": 2.5, "bleu": np.float32(12.25)})
        writer.write_scalars(
            np.int64(2), {"loss": np.float64(1.5), "tokens": np.int32(17), "done": True}
        )
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [1, 2]
    records = writers.read_metrics(tmp_path)
    assert records == [
        {"step": 1, "loss": 2.5, "bleu": 12.25},
        {"step": 2, "loss": 1.5, "tokens": 17, "done": 1},
    ]
    assert type(records[1]["tokens"]) is int


def test_jax_scalars_are_converted(tmp_path):
    with writers.MetricWriter(tmp_path, tensorboard=False) as writer:
        writer.write_scalars(jnp.int32(3), {"loss": jnp.float32(0.5), "correct": jnp.array(4)})
    assert writers.read_metrics(tmp_path) == [{"step": 3, "loss": 0.5, "correct": 4}]


def test_each_write_is_flushed_before_close(tmp_path):
    writer = writers.MetricWriter(tmp_path, tensorboard=False)
    writer.write_scalars(5, {"loss": 1.0})
    # Read while the writer is still open, as a monitoring process would.
    assert writers.read_metrics(tmp_path) == [{"step": 5, "loss": 1.0}]
    writer.close()


def test_non_finite_values_become_null(tmp_path):
    with writers.MetricWriter(tmp_path, tensorboard=False) as writer:
        writer.write_scalars(1, {"nan": float("nan"), "inf": np.float32(np.inf), "ok": 1.0})
    line = (tmp_path / "metrics.jsonl").read_text().strip()
    assert json.loads(line) == {"step": 1, "nan": None, "inf": None, "ok": 1.0}
    assert "NaN" not in line and "Infinity" not in line


def test_tensorboard_event_file_holds_scalars_images_and_text(tmp_path):
    with writers.MetricWriter(tmp_path) as writer:
        writer.write_scalars(3, {"train/loss": 0.75})
        writer.write_images(3, {"attention": np.zeros((8, 6, 3), dtype=np.uint8)})
        writer.write_text(3, {"sample": "je t' aime"})
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    assert _scalar_events(tmp_path) == [(3, "train/loss", 0.75)]
    values = {
        value.tag: (event.step, value)
        for event in _read_events(tmp_path)
        for value in event.summary.value
    }
    step, image_value = values["attention"]
    assert step == 3
    assert (image_value.image.height, image_value.image.width) == (8, 6)
    assert any(tag.startswith("sample") for tag in values)


def test_without_tensorboard_only_jsonl_is_written(tmp_path):
    with writers.MetricWriter(tmp_path, tensorboard=False) as writer:
        writer.write_scalars(1, {"loss": 1.0})
        writer.write_images(1, {"attention": np.zeros((2, 2, 3), dtype=np.uint8)})
        writer.write_text(1, {"sample": "bonjour"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.jsonl"]


def test_disabled_writer_writes_nothing(tmp_path):
    workdir = tmp_path / "run"
    with writers.MetricWriter(workdir, enabled=False) as writer:
        writer.write_scalars(1, {"loss": 1.0})
        writer.write_images(1, {"attention": np.zeros((2, 2, 3), dtype=np.uint8)})
        writer.write_text(1, {"sample": "bonjour"})
        writer.flush()
    assert not workdir.exists()
    assert writers.read_metrics(workdir) == []


def test_truncated_last_line_is_skipped(tmp_path):
    with writers.MetricWriter(tmp_path, tensorboard=False) as writer:
        writer.write_scalars(1, {"loss": 2.0})
        writer.write_scalars(2, {"loss": 1.0})
    with open(tmp_path / "metrics.jsonl", "a") as metrics_file:
        metrics_file.write('{"step": 3, "lo')  # a write cut off by a kill
    assert writers.read_metrics(tmp_path) == [{"step": 1, "loss": 2.0}, {"step": 2, "loss": 1.0}]


def test_corrupt_complete_line_raises(tmp_path):
    (tmp_path / "metrics.jsonl").write_text('{"step": 1}\nnot json\n{"step": 2}\n')
    with pytest.raises(ValueError, match="line 2 is not valid JSON"):
        writers.read_metrics(tmp_path)


def test_reopened_writer_appends(tmp_path):
    with writers.MetricWriter(tmp_path, tensorboard=False) as writer:
        writer.write_scalars(1, {"loss": 2.0})
    with writers.MetricWriter(tmp_path, tensorboard=False) as writer:
        writer.write_scalars(2, {"loss": 1.0})
    assert [record["step"] for record in writers.read_metrics(tmp_path)] == [1, 2]


def test_bad_input_raises(tmp_path):
    with writers.MetricWriter(tmp_path, tensorboard=False) as writer:
        with pytest.raises(ValueError, match="step must be an integer scalar, got 1.5"):
            writer.write_scalars(1.5, {"loss": 1.0})
        with pytest.raises(ValueError, match=r"'loss' must have a single value, got shape \(2,\)"):
            writer.write_scalars(1, {"loss": np.array([1.0, 2.0])})
        with pytest.raises(ValueError, match="other than 'step'"):
            writer.write_scalars(1, {"step": 4})
        with pytest.raises(ValueError, match="'name' must be a bool, integer or float"):
            writer.write_scalars(1, {"name": "text"})
        with pytest.raises(
            ValueError, match=r"'img' must be a uint8.*float64 and shape \(2, 2, 3\)"
        ):
            writer.write_images(1, {"img": np.zeros((2, 2, 3))})
        with pytest.raises(ValueError, match="'sample' must be a str"):
            writer.write_text(1, {"sample": 3})
    # Nothing from the rejected calls reached the file.
    assert writers.read_metrics(tmp_path) == []


def test_closed_writer_refuses_writes(tmp_path):
    writer = writers.MetricWriter(tmp_path, tensorboard=False)
    writer.close()
    writer.close()  # closing twice is harmless
    with pytest.raises(ValueError, match="is closed"):
        writer.write_scalars(1, {"loss": 1.0})
