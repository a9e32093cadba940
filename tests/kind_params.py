"""Kinds for the model-level tests, parametrised over the registry.

Every registered kind runs the library's shared suites (tests/attn/) in
`make test`. The model-level tests (every kind through the Transformer, the
language model, the RNN) run every kind too, but past a few representatives
(a score with parameters, a kernelised mechanism, the RNN without attention;
scaled_dot is every model's default, which their other tests run) they are
marked slow, so that `make test` stays fast as the registry grows;
`make test-all` runs them all.
"""

import pytest

REPRESENTATIVES = ("additive", "linear", "none")


def model_kinds(kinds):
    """`kinds` as pytest params, the ones not in REPRESENTATIVES marked slow."""
    return [k if k in REPRESENTATIVES else pytest.param(k, marks=pytest.mark.slow) for k in kinds]
