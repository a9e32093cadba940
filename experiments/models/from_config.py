"""Models built from their config section: `construct(Model, config.model.transformer, ...)`.

A hyperparameter is declared once, as a field of the model (with its
default) and a field of the config section of the same name; `construct`
passes the section through, so nothing in between can drop or rename one.
A field the model does not take, or one it needs that the section lacks, is a
one-line error naming it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

# Flax adds these to every module's dataclass; a config never sets them.
_MODULE_FIELDS = ("parent", "name")


def model_fields(cls) -> dict[str, dataclasses.Field]:
    """The constructor fields of a Flax module class (or any dataclass)."""
    return {f.name: f for f in dataclasses.fields(cls) if f.init and f.name not in _MODULE_FIELDS}


def construct(
    cls,
    section: Mapping[str, Any],
    *,
    section_name: str,
    optional: Iterable[str] = (),
    **given,
):
    """`cls(**section, **given)`.

    Args:
      cls: the model class.
      section: its hyperparameters (a ConfigDict or dict), one per field.
      section_name: where they live, for the errors ('model.transformer').
      optional: fields the section may leave to the class's default.
      **given: fields that come from elsewhere (vocabulary sizes, dtype).

    Raises:
      ValueError: one line naming unknown fields (and the valid ones) or the
        missing ones.
    """
    fields = model_fields(cls)
    values = dict(section)
    takes = sorted(set(fields) - set(given))
    unknown = sorted(set(values) - set(takes))
    if unknown:
        raise ValueError(
            f"{section_name} has {', '.join(unknown)}, which {cls.__name__} does not take; "
            f"valid fields: {', '.join(takes)}"
        )
    missing = [name for name in takes if name not in values and name not in set(optional)]
    if missing:
        raise ValueError(f"{section_name} lacks {', '.join(missing)}, which {cls.__name__} needs")
    return cls(**values, **given)


__all__ = ["construct", "model_fields"]
