"""The attention fields every experiment's `model` section has, read from the registry.

    model.attention            a registered kind (`attn.available()`)
    model.attention_options    any option of that kind, e.g.
                               `--config.model.attention_options.features=64`
    model.implementation       xla | blockwise | pallas | cudnn | jax_nn | auto
    model.num_kv_heads         key/value heads (0: one per query head)

`attention_options` holds every option of every registered kind, unset (None:
the kind's own default), so a kind registered later is configurable from the
command line with no edit here. `check` turns every bad choice into a
one-line ConfigError before anything compiles.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Iterable, Mapping
from typing import Any

import ml_collections
from ml_collections.config_dict import placeholder

import attn
from attn import implementations
from experiments.common.errors import ConfigError


def every_option() -> ml_collections.ConfigDict:
    """Every option of every registered kind, unset."""
    names = sorted({name for kind in attn.available() for name in attn.lookup(kind).options})
    return ml_collections.ConfigDict({name: placeholder(object) for name in names})


def fields(kind: str = "scaled_dot", implementation: str = "xla") -> dict[str, Any]:
    """The attention fields of a `model` section, to `update` it with."""
    return dict(
        attention=kind,
        attention_options=every_option(),
        implementation=implementation,
        num_kv_heads=0,
    )


def options(model_config) -> dict[str, Any]:
    """The options set for `model_config.attention` (unset ones left out)."""
    given = model_config.get("attention_options") or {}
    if isinstance(given, ml_collections.ConfigDict):
        given = given.to_dict()
    return {name: value for name, value in dict(given).items() if value is not None}


def num_kv_heads(model_config) -> int | None:
    """`model.num_kv_heads` for `attn.MultiHeadAttention` (None: one per head)."""
    return model_config.get("num_kv_heads") or None


def check(
    model_config,
    *,
    section: str = "model",
    needs: Iterable[str] = (),
    what: str = "this model",
    extra_kinds: Iterable[str] = (),
    num_heads: int | None = None,
) -> None:
    """One-line ConfigError for a bad kind, option, implementation or head count.

    Args:
      model_config: the section holding the attention fields.
      section: its name in messages (e.g. "model").
      needs: capabilities the model needs of the kind (see attn.CAPABILITIES).
      what: the model, in messages.
      extra_kinds: names the experiment accepts besides the registry's
        (e.g. the RNN's `none` and `multihead`); not checked further.
      num_heads: the model's query heads, to check `num_kv_heads` against.
    """
    kind = model_config.attention
    if kind not in [*attn.available(), *extra_kinds]:
        valid = [*attn.available(*needs), *extra_kinds]  # what this model can run
        raise ConfigError(f"unknown {section}.attention {kind!r}; valid: {', '.join(valid)}")
    if kind in extra_kinds:
        _check_no_options(model_config, section, kind)
        return
    spec = attn.lookup(kind)
    for name, value in options(model_config).items():
        if name not in spec.options:
            valid_options = ", ".join(sorted(spec.options)) or "none"
            raise ConfigError(
                f"{section}.attention_options.{name}={value!r} is not an option of {kind!r}; "
                f"its options: {valid_options}"
            )
        _check_option_type(section, name, value, spec.options[name], _annotation(spec, name))
    try:
        attn.check_capabilities(kind, needs, what=what)
        implementations.check(model_config.get("implementation", "xla"), kind)
    except ValueError as error:
        raise ConfigError(f"{section}.attention={kind!r}: {error}") from None
    _check_kv_heads(model_config, section, num_heads)


def _annotation(spec, name: str) -> str:
    """The option's type annotation in the kind's signature, as text ("" if none)."""
    annotation = inspect.signature(spec.fn).parameters[name].annotation
    if annotation is inspect.Parameter.empty:
        return ""
    return annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")


def _check_option_type(section: str, name: str, value, default, annotation: str) -> None:
    """Options are untyped config fields, so a word the command line could not read as a
    number (`nan`, `1e-3x`) arrives as a string: refuse it where the option is a number
    (its default is one, or its annotation says int or float and not str)."""
    annotated = {word.strip() for word in annotation.split("|")}
    number = (isinstance(default, (int, float)) and not isinstance(default, bool)) or (
        bool(annotated & {"int", "float"}) and "str" not in annotated
    )
    if number and not isinstance(value, (int, float)):
        default_note = "" if default is None else f" (default {default!r})"
        raise ConfigError(
            f"{section}.attention_options.{name}={value!r} is not a number; valid: a number"
            f"{default_note}"
        )
    if number and not math.isfinite(value):
        raise ConfigError(f"{section}.attention_options.{name}={value!r}; valid: a finite number")


def _check_no_options(model_config, section: str, kind: str) -> None:
    given = options(model_config)
    if given:
        name = next(iter(given))
        raise ConfigError(
            f"{section}.attention_options.{name} is set, but {section}.attention={kind!r} "
            f"takes no options"
        )


def _check_kv_heads(model_config, section: str, num_heads: int | None) -> None:
    kv_heads = model_config.get("num_kv_heads", 0)
    if not isinstance(kv_heads, int) or kv_heads < 0:
        raise ConfigError(
            f"{section}.num_kv_heads must be 0 (one per head) or a positive integer, "
            f"got {kv_heads!r}"
        )
    if kv_heads and num_heads and num_heads % kv_heads:
        divisors = [h for h in range(1, num_heads + 1) if num_heads % h == 0]
        raise ConfigError(
            f"{section}.num_kv_heads={kv_heads} does not divide num_heads={num_heads}; "
            f"valid: 0 or {divisors}"
        )


def module_options(model_config) -> Mapping[str, Any]:
    """The attention keyword arguments of the shared models' layers."""
    return dict(
        attention=model_config.attention,
        attention_options=tuple(sorted(options(model_config).items())),
        implementation=model_config.get("implementation", "xla"),
        num_kv_heads=num_kv_heads(model_config),
    )
