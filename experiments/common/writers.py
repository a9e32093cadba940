"""Metric writer: a JSON-lines log plus TensorBoard summaries.

Every call to :meth:`MetricWriter.write_scalars` appends one line
``{"step": step, "name": value, ...}`` to ``<workdir>/metrics.jsonl`` and
flushes it, so the file is readable while a run is going and survives a
killed run up to its last completed write. The same scalars, plus images and
text, go to TensorBoard event files under ``<workdir>/tensorboard``.

:func:`read_metrics` reads the JSON-lines log back.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping

import numpy as np
from tensorboardX import SummaryWriter

METRICS_FILENAME = "metrics.jsonl"
TENSORBOARD_DIRNAME = "tensorboard"


def _plain_step(step) -> int:
    """Converts a Python, numpy or jax integer scalar to a plain int."""
    array = np.asarray(step)
    if array.ndim != 0 or array.dtype.kind not in "iu":
        raise ValueError(
            f"step must be an integer scalar, got {step!r} of type {type(step).__name__}"
        )
    return int(array)


def _plain_scalar(name: str, value) -> int | float:
    """Converts a Python, numpy or jax scalar to a plain int or float."""
    array = np.asarray(value)
    if array.ndim != 0:
        raise ValueError(f"scalar {name!r} must have a single value, got shape {array.shape}")
    if array.dtype.kind in "biu":
        return int(array)
    if array.dtype.kind == "f":
        return float(array)
    raise ValueError(
        f"scalar {name!r} must be a bool, integer or float, got {value!r} of dtype {array.dtype}"
    )


def _json_value(value: int | float) -> int | float | None:
    # JSON has no NaN or infinity; null keeps each line standard JSON.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class MetricWriter:
    """Writes metrics of one run to ``metrics.jsonl`` and TensorBoard.

    Args:
      workdir: the run directory; created on construction when enabled.
      enabled: when False every method does nothing and no file or directory
        is created. In multi-host runs pass ``enabled=(process_index == 0)``
        so one process writes.
      tensorboard: also write TensorBoard event files. Without it, images and
        text are dropped and scalars go to ``metrics.jsonl`` only.

    Non-finite scalars (NaN, +-inf) are written to ``metrics.jsonl`` as
    ``null`` and to TensorBoard as they are. A writer reopened on an existing
    workdir appends to its ``metrics.jsonl``, so a resumed run keeps one log.

    Use as a context manager, or call :meth:`close` when done.
    """

    def __init__(
        self, workdir: str | os.PathLike, *, enabled: bool = True, tensorboard: bool = True
    ):
        self.workdir = os.fspath(workdir)
        self.enabled = enabled
        self._closed = False
        self._metrics_file = None
        self._summary_writer = None
        if not enabled:
            return
        os.makedirs(self.workdir, exist_ok=True)
        self._metrics_file = open(
            os.path.join(self.workdir, METRICS_FILENAME), "a", encoding="utf-8"
        )
        if tensorboard:
            self._summary_writer = SummaryWriter(
                logdir=os.path.join(self.workdir, TENSORBOARD_DIRNAME)
            )

    def _active(self) -> bool:
        if self._closed:
            raise ValueError(f"MetricWriter for {self.workdir!r} is closed")
        return self.enabled

    def write_scalars(self, step: int, scalars: Mapping[str, object]) -> None:
        """Logs named scalars at ``step``.

        Args:
          step: the training step, a Python, numpy or jax integer scalar.
          scalars: name -> Python/numpy/jax scalar (bool, integer or float);
            bools are logged as 0/1 integers.

        Raises:
          ValueError: for a non-integer step, a non-string name, the reserved
            name "step", or a value that is not a single number.
        """
        if not self._active():
            return
        step = _plain_step(step)
        record: dict[str, int | float | None] = {"step": step}
        plain: dict[str, int | float] = {}
        for name, value in scalars.items():
            if not isinstance(name, str) or name == "step":
                raise ValueError(f"scalar names must be strings other than 'step', got {name!r}")
            plain[name] = _plain_scalar(name, value)
            record[name] = _json_value(plain[name])
        self._metrics_file.write(json.dumps(record, allow_nan=False) + "\n")
        self._metrics_file.flush()
        if self._summary_writer is not None:
            for name, value in plain.items():
                self._summary_writer.add_scalar(name, value, global_step=step)

    def write_images(self, step: int, images: Mapping[str, np.ndarray]) -> None:
        """Logs images to TensorBoard (dropped when TensorBoard is off).

        Args:
          step: the training step.
          images: name -> uint8 array [H, W, C] with C in {1, 3, 4}, e.g.
            from :func:`attn.viz.figure_to_array`.

        Raises:
          ValueError: for an image that is not uint8 [H, W, 1|3|4].
        """
        if not self._active():
            return
        step = _plain_step(step)
        checked = {}
        for name, image in images.items():
            image = np.asarray(image)
            if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] not in (1, 3, 4):
                raise ValueError(
                    f"image {name!r} must be a uint8 [H, W, C] array with C in (1, 3, 4), "
                    f"got dtype {image.dtype} and shape {image.shape}"
                )
            checked[name] = image
        if self._summary_writer is None:
            return
        for name, image in checked.items():
            self._summary_writer.add_image(name, image, global_step=step, dataformats="HWC")

    def write_text(self, step: int, texts: Mapping[str, str]) -> None:
        """Logs text (e.g. sample translations) to TensorBoard only.

        Args:
          step: the training step.
          texts: name -> text; TensorBoard renders it as markdown.

        Raises:
          ValueError: for a value that is not a string.
        """
        if not self._active():
            return
        step = _plain_step(step)
        for name, text in texts.items():
            if not isinstance(text, str):
                raise ValueError(f"text {name!r} must be a str, got {type(text).__name__}")
        if self._summary_writer is None:
            return
        for name, text in texts.items():
            self._summary_writer.add_text(name, text, global_step=step)

    def flush(self) -> None:
        """Pushes buffered TensorBoard events to disk."""
        if not self._active():
            return
        self._metrics_file.flush()
        if self._summary_writer is not None:
            self._summary_writer.flush()

    def close(self) -> None:
        """Flushes and closes the files; later calls to close do nothing."""
        if self._closed:
            return
        self._closed = True
        if self._metrics_file is not None:
            self._metrics_file.close()
        if self._summary_writer is not None:
            self._summary_writer.close()

    def __enter__(self) -> MetricWriter:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def read_metrics(workdir: str | os.PathLike) -> list[dict]:
    """Reads back the records :class:`MetricWriter` appended to ``metrics.jsonl``.

    A run killed mid-write can leave a last line without its newline; such a
    line is skipped when it does not parse. Non-finite values come back as
    None (they were written as null).

    Args:
      workdir: the run directory.

    Returns:
      One dict per logged line, in file order, each with a ``"step"`` key.
      Empty when the file does not exist (nothing was logged yet).

    Raises:
      ValueError: if a complete line (one ending in a newline) is not valid
        JSON, which means the file is corrupt rather than cut short.
    """
    path = os.path.join(os.fspath(workdir), METRICS_FILENAME)
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as metrics_file:
        lines = metrics_file.readlines()
    records = []
    for line_number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as error:
            cut_short = line_number == len(lines) and not line.endswith("\n")
            if cut_short:
                break
            raise ValueError(
                f"{path} line {line_number} is not valid JSON: {line.strip()!r}"
            ) from error
    return records
