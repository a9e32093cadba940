"""The shapes a traced program forms, for tests that check what an implementation
materialises (a chunk of the size asked for, no `[q_len, k_len]` array)."""

import jax


def _jaxpr_shapes(jaxpr):
    for eqn in jaxpr.eqns:
        yield from (var.aval.shape for var in eqn.outvars)
        for param in eqn.params.values():
            for sub in param if isinstance(param, (tuple, list)) else (param,):
                sub = getattr(sub, "jaxpr", sub)
                if hasattr(sub, "eqns"):
                    yield from _jaxpr_shapes(sub)


def intermediate_shapes(fn, *args):
    """Every intermediate shape of `fn(*args)`'s program, inside loops, branches
    and custom differentiation rules too."""
    return list(_jaxpr_shapes(jax.make_jaxpr(fn)(*args).jaxpr))
