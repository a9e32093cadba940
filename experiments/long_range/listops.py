"""ListOps (Nangia & Bowman 2018), as Long Range Arena uses it (Tay et al. 2021).

An expression is a tree of list operators over the digits 0-9, written in
prefix form with brackets, e.g. `[MAX 2 9 [MIN 4 7 ] 0 ]`; its value, a digit,
is the class (10 classes):

- MAX, MIN: the largest, the smallest argument;
- MED: the median, rounded down (LRA's `int(np.median(...))`);
- SM: the sum modulo 10.

`generate(seed, count, ...)` draws `count` expressions whose token counts lie
in `[min_length, max_length]` (LRA: up to 2,000 tokens, nesting depth up to
10, up to 10 arguments), deterministically from `seed`: each expression first
draws its target length, then grows a tree to fill it, so long expressions
need no rejection sampling.
"""

from __future__ import annotations

import numpy as np

OPERATORS = ("MAX", "MIN", "MED", "SM")
# Token ids: 0 is padding; then the digits, the opening operators, the closing bracket.
VOCABULARY = ("<pad>", *(str(d) for d in range(10)), *(f"[{op}" for op in OPERATORS), "]")
TOKEN_ID = {token: i for i, token in enumerate(VOCABULARY)}
NUM_CLASSES = 10


def check_settings(*, min_length: int, max_length: int, max_depth: int, max_args: int) -> None:
    """One-line ValueError naming an impossible setting."""
    if not isinstance(max_depth, int) or max_depth < 1:
        raise ValueError(f"listops max_depth={max_depth!r}; valid: 1 or more")
    if not isinstance(max_args, int) or max_args < 2:
        raise ValueError(f"listops max_args={max_args!r}; valid: 2 or more")
    if not isinstance(min_length, int) or min_length < 5:
        raise ValueError(
            f"listops min_length={min_length!r}; valid: 5 or more (the shortest "
            f"expression, [MAX 1 2 ], has 5 tokens)"
        )
    if not isinstance(max_length, int) or max_length < min_length:
        raise ValueError(
            f"listops max_length={max_length!r}; valid: at least min_length={min_length}"
        )
    # The longest tree of this depth and width: max_args arguments at every level.
    longest = 1
    for _ in range(max_depth):
        longest = 2 + max_args * longest
    if longest < min_length:
        raise ValueError(
            f"listops min_length={min_length} cannot be reached with max_depth={max_depth} and "
            f"max_args={max_args} (at most {longest} tokens); raise max_depth or max_args"
        )


def _grow(rng, budget: int, depth: int, max_depth: int, max_args: int) -> list:
    """A tree of at most `budget` tokens: a digit (int) or [operator, *arguments]."""
    if depth >= max_depth or budget < 5:
        return int(rng.integers(10))
    inner = budget - 2  # the operator token and the closing bracket
    count = int(rng.integers(2, min(max_args, inner) + 1))
    # Split the inner budget among the arguments, each at least one token.
    cuts = np.sort(rng.choice(np.arange(1, inner), count - 1, replace=False))
    shares = np.diff(np.concatenate([[0], cuts, [inner]]))
    operator = OPERATORS[int(rng.integers(len(OPERATORS)))]
    return [operator, *(_grow(rng, int(s), depth + 1, max_depth, max_args) for s in shares)]


def tokens(tree) -> list[str]:
    """The expression's tokens, e.g. `['[MAX', '2', '9', ']']`."""
    if isinstance(tree, int):
        return [str(tree)]
    return [f"[{tree[0]}", *(t for argument in tree[1:] for t in tokens(argument)), "]"]


def value(tree) -> int:
    """The digit an expression evaluates to."""
    if isinstance(tree, int):
        return tree
    arguments = [value(a) for a in tree[1:]]
    operator = tree[0]
    if operator == "MAX":
        return max(arguments)
    if operator == "MIN":
        return min(arguments)
    if operator == "MED":
        return int(np.median(arguments))
    if operator == "SM":
        return sum(arguments) % 10
    raise ValueError(f"unknown ListOps operator {operator!r}; valid: {', '.join(OPERATORS)}")


def parse(text: str):
    """The tree of an expression written with spaces between tokens."""
    stack: list[list] = [[]]
    for token in text.split():
        if token.startswith("[") and token[1:] in OPERATORS:
            stack.append([token[1:]])
        elif token == "]":
            node = stack.pop()
            stack[-1].append(node)
        elif token.isdigit() and len(token) == 1:
            stack[-1].append(int(token))
        else:
            raise ValueError(f"unknown ListOps token {token!r}")
    if len(stack) != 1 or len(stack[0]) != 1:
        raise ValueError(f"unbalanced ListOps expression {text!r}")
    return stack[0][0]


def generate(
    seed: int, count: int, *, min_length: int, max_length: int, max_depth: int, max_args: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`count` expressions: (token ids `[count, max_length]` padded with 0, lengths
    `[count]`, labels `[count]`), deterministic from `seed`."""
    check_settings(
        min_length=min_length, max_length=max_length, max_depth=max_depth, max_args=max_args
    )
    rng = np.random.default_rng(seed)
    ids = np.zeros((count, max_length), np.int32)
    lengths = np.zeros(count, np.int32)
    labels = np.zeros(count, np.int32)
    for i in range(count):
        while True:  # a tree may fall short of its target when depth runs out
            target = int(rng.integers(min_length, max_length + 1))
            tree = _grow(rng, target, 1, max_depth, max_args)
            written = tokens(tree)
            if min_length <= len(written) <= max_length:
                break
        ids[i, : len(written)] = [TOKEN_ID[t] for t in written]
        lengths[i], labels[i] = len(written), value(tree)
    return ids, lengths, labels


__all__ = [
    "NUM_CLASSES",
    "OPERATORS",
    "TOKEN_ID",
    "VOCABULARY",
    "check_settings",
    "generate",
    "parse",
    "tokens",
    "value",
]
