"""Imports every module that registers an attend mechanism (see `attn.registry`).

A new mechanism module is one import line here; the registry, the shared
tests, the sweeps and the benchmark then pick it up.
"""

from attn import (  # noqa: F401  (imported for their registrations)
    block_sparse,
    differential,
    linear_attention,
    linformer,
    nystrom,
    performer,
    sigmoid_attention,
    sliding_window,
)
