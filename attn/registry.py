"""Registry of attention score kinds.

An attention variant is its score function: everything else (masking, softmax,
the weighted sum of values, heads, dropout) is shared. Adding a variant is one
function plus one line::

    @attn.register("my_kind", same_features=True)
    def my_kind(query, key):
        # query [batch, heads, q_len, q_features], key [batch, heads, k_len, k_features]
        return jnp.einsum("bhqd,bhkd->bhqk", query, key)   # [batch, heads, q_len, k_len]

after which `attn.get("my_kind")`, `MultiHeadAttention(kind="my_kind")` and the
shared test suite (tests/attn/test_every_kind.py) pick it up.

A score function may own parameters: it then creates Flax linen submodules
inline (e.g. `nn.Einsum(...)`), which is allowed because it always runs inside
the compact `__call__` of `attn.modules.Score`.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Mapping
from typing import Any

ScoreFn = Callable[..., Any]


@dataclasses.dataclass(frozen=True)
class ScoreKind:
    """A registered score function and what it supports.

    Attributes:
      name: the registry name, as used in configs and on the command line.
      fn: `fn(query, key, **options) -> logits`, with query
        `[batch, heads, q_len, q_features]`, key `[batch, heads, k_len, k_features]`
        and logits `[batch, heads, q_len, k_len]`.
      same_features: whether query and key must have the same feature size
        (true for dot products; false when the score projects them itself).
      has_params: whether the score owns trainable parameters.
      options: the keyword options `fn` accepts, with their defaults.
      description: one line for `attn.describe()` and error messages.
    """

    name: str
    fn: ScoreFn
    same_features: bool
    has_params: bool
    options: Mapping[str, Any]
    description: str

    def check_options(self, options: Mapping[str, Any]) -> None:
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            valid = ", ".join(sorted(self.options)) or "none"
            raise ValueError(
                f"Attention kind {self.name!r} has no option(s) {unknown}; "
                f"its options are: {valid}."
            )


_KINDS: dict[str, ScoreKind] = {}


def register(
    name: str, *, same_features: bool = False, has_params: bool = False
) -> Callable[[ScoreFn], ScoreFn]:
    """Decorator registering a score function under `name`."""

    def decorator(fn: ScoreFn) -> ScoreFn:
        if name in _KINDS:
            raise ValueError(f"Attention kind {name!r} is already registered.")
        signature = inspect.signature(fn)
        options = {
            p.name: p.default
            for p in list(signature.parameters.values())[2:]
            if p.kind is inspect.Parameter.KEYWORD_ONLY
        }
        doc = inspect.getdoc(fn) or ""
        _KINDS[name] = ScoreKind(
            name=name,
            fn=fn,
            same_features=same_features,
            has_params=has_params,
            options=options,
            description=doc.splitlines()[0] if doc else name,
        )
        return fn

    return decorator


def unregister(name: str) -> None:
    """Removes a kind (for tests and interactive experiments)."""
    lookup(name)
    del _KINDS[name]


def available() -> list[str]:
    """Names of every registered attention kind, sorted."""
    return sorted(_KINDS)


def lookup(name: str) -> ScoreKind:
    """The registered kind called `name`; ValueError listing valid names if none."""
    if not isinstance(name, str) or name not in _KINDS:
        raise ValueError(f"Unknown attention kind {name!r}; valid kinds: {', '.join(available())}.")
    return _KINDS[name]


def describe() -> str:
    """A table of the registered kinds, one per line."""
    rows = []
    for name in available():
        kind = _KINDS[name]
        options = ", ".join(f"{k}={v!r}" for k, v in kind.options.items()) or "-"
        rows.append(
            f"{name:<12} params={'yes' if kind.has_params else 'no ':<3}  "
            f"options: {options:<28} {kind.description}"
        )
    return "\n".join(rows)
