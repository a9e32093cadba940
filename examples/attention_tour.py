"""A first look at the library: attention weights of a small example and timings.

    python -m examples.attention_tour

The keys stand for the English words "I love you"; each query is built to
resemble one key (plus noise), as in the classic picture of "je t' aime"
attending to "I love you". Kinds with parameters are shown untrained, so their
weights show only what random parameters do. The timing table compares
`attn.dot_product_attention` with `jax.nn.dot_product_attention`, forward and
backward, in the same run.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

import attn

SOURCE = ["I", "love", "you"]
TARGET = ["je", "t'", "aime"]
TARGET_LOOKS_AT = [0, 2, 1]  # je -> I, t' -> you, aime -> love


def example(features: int = 16, seed: int = 0):
    rng = np.random.default_rng(seed)
    keys = rng.normal(size=(len(SOURCE), features))
    keys /= np.linalg.norm(keys, axis=-1, keepdims=True)
    queries = 3.0 * keys[TARGET_LOOKS_AT] + 0.3 * rng.normal(size=(len(TARGET), features))
    return jnp.asarray(queries[None], jnp.float32), jnp.asarray(keys[None], jnp.float32)


def print_weights(name: str, weights) -> None:
    print(f"\n{name}")
    print(" " * 6 + "".join(f"{w:>7}" for w in SOURCE))
    for word, row in zip(TARGET, np.asarray(weights)):
        print(f"{word:<6}" + "".join(f"{x:7.2f}" for x in row))


def time_call(fn, *args, repeats: int = 5) -> float:
    jax.block_until_ready(fn(*args))  # compile
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        best = min(best, time.perf_counter() - start)
    return best * 1e3


def grad_of(fn):
    """Jitted gradient of a causal attention function's output sum."""
    return jax.jit(jax.grad(lambda q, k, v: fn(q, k, v, is_causal=True).sum(), argnums=(0, 1, 2)))


def timing_table(lengths=(128, 256, 512, 1024), batch=2, heads=4, head_dim=64):
    print(
        f"\nforward+backward, causal, batch {batch}, {heads} heads, head_dim "
        f"{head_dim}, float32, best of 5 on {jax.devices()[0].platform}"
    )
    print(f"{'length':>8} {'attn ms':>10} {'jax.nn ms':>10} {'ratio':>7}")
    for length in lengths:
        keys = jax.random.split(jax.random.key(length), 3)
        q, k, v = (jax.random.normal(key, (batch, length, heads, head_dim)) for key in keys)

        ours = time_call(grad_of(attn.dot_product_attention), q, k, v)
        theirs = time_call(grad_of(jax.nn.dot_product_attention), q, k, v)
        print(f"{length:>8} {ours:>10.2f} {theirs:>10.2f} {theirs / ours:>6.2f}x")


def main() -> None:
    queries, keys = example()
    print("Registered attention kinds:\n" + attn.describe())
    for name in attn.available():
        module = attn.get(name)
        params = module.init(jax.random.key(0), queries, keys, keys)
        _, weights = module.apply(params, queries, keys, keys)
        trained = " (untrained parameters)" if attn.lookup(name).has_params else ""
        print_weights(f"{name}{trained}", weights[0])
    timing_table()


if __name__ == "__main__":
    main()
