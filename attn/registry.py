"""Registry of attention mechanisms: the one place that knows a kind.

A mechanism is registered in one of two forms, and everything around it
(projections into heads, masks, dropout, the decoding cache, the checks) is
shared by `attn.modules`:

- a **score** (`register`): how much a query attends to a key before the
  softmax. Masking, the softmax and the weighted sum of values are shared::

      @attn.register("my_kind", same_features=True)
      def my_kind(query, key):
          # query [batch, heads, q_len, d], key [batch, heads, k_len, d]
          return jnp.einsum("bhqd,bhkd->bhqk", query, key)  # [batch, heads, q_len, k_len]

- an **attend** function (`register_mechanism`): a mechanism that never forms
  pair scores (linear attention, Performer, Linformer, ...) maps queries, keys,
  values and a mask straight to the output, and declares what it can do::

      @attn.register_mechanism("my_linear", capabilities=("padding", "cross"))
      def my_linear(query, key, value, *, mask=None, is_causal=False):
          # [batch, heads, length, features] each -> [batch, heads, q_len, v_features]
          ...

After either, `attn.get("my_kind")`, `MultiHeadAttention(kind="my_kind")`,
every experiment's `model.attention`, the shared test suite
(tests/attn/test_every_kind.py), the sweeps over every kind and the benchmark
pick it up.

Faster forms of a kind register with it (`register_implementation`): the
blockwise, Pallas and cuDNN forms of the dot products, the chunked form of
additive attention. `implementation="auto"` then chooses among them by the
kind's `auto` table, and falls back to the plain form ('xla') where a kind has
no faster one.

Score and attend functions may own parameters: they create Flax linen
submodules inline (e.g. `nn.Einsum(...)`), which is allowed because they always
run inside the compact `__call__` of a submodule named 'score'
(`attn.modules.Score` / `attn.modules.Attend`). A faster form must create the
same parameters (names, shapes, initialisation) as the kind's plain form, so
one set of parameters serves every implementation.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

ScoreFn = Callable[..., Any]

# What a mechanism may declare it supports; `MultiHeadAttention` and the
# experiments check these before compiling.
CAPABILITIES = {
    "causal": "causal masking (is_causal=True)",
    "cross": "keys and values from another sequence than the queries",
    "padding": "a boolean padding mask on the keys",
    "mask": "any boolean mask [batch, heads, q_len, k_len]",
    "bias": "a float bias added to the logits",
    "weights": "returns the [batch, heads, q_len, k_len] weights",
    "decode": "cached decoding, one position at a time",
    "linear_memory": "a form whose memory is linear in the sequence length",
}
SCORE_CAPABILITIES = ("causal", "cross", "padding", "mask", "bias", "weights", "decode")

# An `auto` rule: up to this many query x key pairs per head and this head
# size, the first of these implementations that runs on the backend and fits
# the shapes; an optional fourth element narrows the rule to causal or not
# (`{"causal": False}`) and to some dtypes (`{"dtypes": ("float32",)}`), where
# the measured winner differs. Tables map a backend ('cpu', 'gpu', ...;
# 'default' for the rest) to rules, first match wins.
AutoRule = (
    tuple[float, float, tuple[str, ...]] | tuple[float, float, tuple[str, ...], Mapping[str, Any]]
)
AUTO_CONDITIONS = ("causal", "dtypes")


@dataclasses.dataclass(frozen=True)
class Implementation:
    """A faster form of one kind.

    Attributes:
      name: e.g. 'blockwise', 'pallas', 'cudnn'.
      fn: `fn(query, key, value, *, mask, bias, is_causal, **options)` with
        query `[batch, heads, q_len, q_features]`, key `[batch, heads, k_len,
        k_features]`, value `[batch, heads, k_len, v_features]` -> `[batch,
        heads, q_len, v_features]`; `options` are the kind's. Called inside the
        compact method of the 'score' submodule.
      backends: where it runs (None: every backend).
      unfit: `unfit(head_dim=, value_dim=, dtype=) -> reason or None`: shapes
        it cannot take (None: it takes every shape).
    """

    name: str
    fn: Callable[..., Any]
    backends: tuple[str, ...] | None = None
    unfit: Callable[..., str | None] | None = None

    def runs_on(self, backend: str) -> bool:
        return self.backends is None or backend in self.backends

    def why_unfit(self, **shapes) -> str | None:
        return None if self.unfit is None else self.unfit(**shapes)


@dataclasses.dataclass(frozen=True)
class Mechanism:
    """A registered attention mechanism and what it supports.

    Attributes:
      name: the registry name, as used in configs and on the command line.
      fn: for form 'score', `fn(query, key, **options) -> logits` with query
        `[batch, heads, q_len, q_features]`, key `[batch, heads, k_len,
        k_features]`, logits `[batch, heads, q_len, k_len]`; for form 'attend',
        `fn(query, key, value, *, mask=None, is_causal=False, [bias=None,]
        [query_offset=0,] **options) -> [batch, heads, q_len, v_features]`.
      form: 'score' or 'attend'.
      same_features: whether query and key must have the same feature size.
      has_params: whether it owns trainable parameters.
      options: the keyword options `fn` accepts, with their defaults.
      declared: the capabilities it declares (see CAPABILITIES).
      description: one line for `attn.describe()` and error messages.
      implementations: faster forms, by name (filled by `register_implementation`).
      auto: `implementation="auto"`'s rules per backend (see AutoRule).
      hidden_per_pair: `hidden_per_pair(options, head_dim)`: floats the plain
        form holds per query x key pair and head (auto avoids it past a limit).
    """

    name: str
    fn: ScoreFn
    form: str
    same_features: bool
    has_params: bool
    options: Mapping[str, Any]
    declared: frozenset[str]
    description: str
    implementations: dict[str, Implementation] = dataclasses.field(default_factory=dict)
    auto: Mapping[str, Sequence[AutoRule]] = dataclasses.field(default_factory=dict)
    hidden_per_pair: Callable[[Mapping[str, Any], int], int] = lambda options, head_dim: 1

    @property
    def capabilities(self) -> frozenset[str]:
        """What it declares, plus 'linear_memory' where a faster form exists."""
        return self.declared | ({"linear_memory"} if self.implementations else set())

    def supports(self, capability: str) -> bool:
        return capability in self.capabilities

    @property
    def takes_query_offset(self) -> bool:
        """Whether its function wants `query_offset`: the position of the first
        query among the keys (0 in a full pass, the cache index in decoding),
        for mechanisms whose pattern depends on where a query sits."""
        return "query_offset" in inspect.signature(self.fn).parameters

    def check_options(self, options: Mapping[str, Any]) -> None:
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            valid = ", ".join(sorted(self.options)) or "none"
            raise ValueError(
                f"Attention kind {self.name!r} has no option(s) {unknown}; "
                f"its options are: {valid}."
            )


ScoreKind = Mechanism  # the name of registry entries before attend mechanisms existed

_KINDS: dict[str, Mechanism] = {}


def _keyword_options(fn, skip: int) -> dict[str, Any]:
    parameters = list(inspect.signature(fn).parameters.values())[skip:]
    return {p.name: p.default for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY}


def _add(name: str, fn, **fields) -> None:
    if name in _KINDS:
        raise ValueError(f"Attention kind {name!r} is already registered.")
    declared = frozenset(fields.pop("capabilities"))
    unknown = sorted(declared - set(CAPABILITIES))
    if unknown:
        raise ValueError(
            f"unknown capabilities {unknown} for {name!r}; valid: {', '.join(CAPABILITIES)}."
        )
    doc = inspect.getdoc(fn) or ""
    _KINDS[name] = Mechanism(
        name=name,
        fn=fn,
        declared=declared,
        description=doc.splitlines()[0] if doc else name,
        **fields,
    )


def register(
    name: str,
    *,
    same_features: bool = False,
    has_params: bool = False,
    capabilities: Iterable[str] = SCORE_CAPABILITIES,
    auto: Mapping[str, Sequence[AutoRule]] | None = None,
    hidden_per_pair: Callable[[Mapping[str, Any], int], int] | None = None,
) -> Callable[[ScoreFn], ScoreFn]:
    """Decorator registering a score function `fn(query, key, **options)` under `name`."""

    def decorator(fn: ScoreFn) -> ScoreFn:
        _add(
            name,
            fn,
            form="score",
            same_features=same_features,
            has_params=has_params,
            options=_keyword_options(fn, skip=2),
            capabilities=capabilities,
            auto=dict(auto or {}),
            **({"hidden_per_pair": hidden_per_pair} if hidden_per_pair else {}),
        )
        return fn

    return decorator


def register_mechanism(
    name: str,
    *,
    capabilities: Iterable[str],
    same_features: bool = True,
    has_params: bool = False,
) -> Callable[[ScoreFn], ScoreFn]:
    """Decorator registering an attend function `fn(query, key, value, *, mask,
    is_causal, **options) -> output` under `name` (see the module docstring)."""

    def decorator(fn: ScoreFn) -> ScoreFn:
        reserved = {"mask", "is_causal", "bias", "query_offset"}
        options = {k: v for k, v in _keyword_options(fn, skip=3).items() if k not in reserved}
        _add(
            name,
            fn,
            form="attend",
            same_features=same_features,
            has_params=has_params,
            options=options,
            capabilities=capabilities,
        )
        return fn

    return decorator


def register_implementation(
    kind: str,
    implementation: str,
    *,
    backends: Sequence[str] | None = None,
    unfit: Callable[..., str | None] | None = None,
):
    """Decorator adding a faster form `fn` of `kind` (see `Implementation`)."""

    def decorator(fn):
        entry = lookup(kind)
        if implementation in ("xla", "auto") or implementation in entry.implementations:
            raise ValueError(
                f"implementation {implementation!r} of {kind!r} is reserved or already registered."
            )
        entry.implementations[implementation] = Implementation(
            implementation, fn, None if backends is None else tuple(backends), unfit
        )
        return fn

    return decorator


def set_auto(kind: str, table: Mapping[str, Sequence[AutoRule]]) -> None:
    """Sets `implementation="auto"`'s rules for `kind` (see AutoRule), per backend."""
    entry = lookup(kind)
    for backend, rules in table.items():
        for rule in rules:
            unknown = [n for n in rule[2] if n != "xla" and n not in entry.implementations]
            if unknown:
                raise ValueError(f"auto rule {rule} of {kind!r} names unregistered {unknown}.")
            conditions = sorted(set(rule[3] if len(rule) > 3 else ()) - set(AUTO_CONDITIONS))
            if conditions:
                raise ValueError(
                    f"auto rule {rule} of {kind!r} has unknown conditions {conditions}; "
                    f"valid: {', '.join(AUTO_CONDITIONS)}."
                )
        entry.auto[backend] = tuple(rules)


def unregister(name: str) -> None:
    """Removes a kind (for tests and interactive experiments)."""
    lookup(name)
    del _KINDS[name]


def available(*capabilities: str) -> list[str]:
    """Names of every registered kind, sorted; with arguments, only the kinds
    that support all of those capabilities (e.g. `available("causal")`)."""
    return sorted(
        name for name, kind in _KINDS.items() if all(kind.supports(c) for c in capabilities)
    )


def lookup(name: str) -> Mechanism:
    """The registered kind called `name`; ValueError listing valid names if none."""
    if not isinstance(name, str) or name not in _KINDS:
        raise ValueError(f"Unknown attention kind {name!r}; valid kinds: {', '.join(available())}.")
    return _KINDS[name]


def check_capabilities(name: str, needed: Iterable[str], *, what: str = "this use") -> None:
    """One-line ValueError unless kind `name` supports every capability in
    `needed`; it names the kinds that do."""
    kind = lookup(name)
    missing = [c for c in needed if not kind.supports(c)]
    for capability in missing:
        if capability not in CAPABILITIES:
            raise ValueError(
                f"unknown capability {capability!r}; valid: {', '.join(CAPABILITIES)}."
            )
    if missing:
        able = available(*needed)
        raise ValueError(
            f"attention kind {name!r} cannot do {' and '.join(CAPABILITIES[c] for c in missing)}, "
            f"which {what} needs; kinds that can: {', '.join(able) or 'none'}."
        )


def describe() -> str:
    """A table of the registered kinds, one per line."""
    rows = []
    for name in available():
        kind = _KINDS[name]
        options = ", ".join(f"{k}={v!r}" for k, v in kind.options.items()) or "-"
        forms = ", ".join(["xla", *kind.implementations])
        rows.append(
            f"{name:<12} params={'yes' if kind.has_params else 'no ':<3}  "
            f"options: {options:<28} forms: {forms:<30} {kind.description}"
        )
    return "\n".join(rows)


def capability_table() -> str:
    """A markdown table of every kind and what it can do (README shows it)."""
    names = list(CAPABILITIES)
    lines = [
        "| kind | form | " + " | ".join(names) + " |",
        "|" + "---|" * (len(names) + 2),
    ]
    for name in available():
        kind = _KINDS[name]
        marks = ["yes" if kind.supports(c) else "-" for c in names]
        lines.append(f"| `{name}` | {kind.form} | " + " | ".join(marks) + " |")
    return "\n".join(lines) + "\n"


UNLIMITED = math.inf

__all__ = [
    "CAPABILITIES",
    "SCORE_CAPABILITIES",
    "UNLIMITED",
    "Implementation",
    "Mechanism",
    "ScoreKind",
    "available",
    "capability_table",
    "check_capabilities",
    "describe",
    "lookup",
    "register",
    "register_implementation",
    "register_mechanism",
    "set_auto",
    "unregister",
]
