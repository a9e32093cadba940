"""A small mutation tester: one plausible bug at a time, the module's own tests run against it.

    python tools/mutate.py                      # every module in MODULES
    python tools/mutate.py attn/masking.py      # one module
    python tools/mutate.py attn/masking.py --list

Each mutant changes one operator, comparison, boolean operator, condition or
constant of the module (see `Mutator`) in a copy of the repository, and runs
the module's test files there (stopping at the first failure, under a
timeout). A mutant is killed when a test fails or times out, and survives when
every test passes. Lines marked `# pragma: no mutate` are left alone, and so
are annotations, docstrings and other strings. Survivors are printed as a
diff of the mutated line, to be closed by a test or judged equivalent.

Third-party packages are imported once; each mutant's pytest runs in a forked
child, so a mutant costs its tests and not the start-up. JAX's compilation
cache is shared by the children: code a mutant does not touch compiles once.
"""

from __future__ import annotations

import argparse
import ast
import copy
import dataclasses
import os
import shutil
import signal
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Each module and its own tests (pytest arguments, relative to the root).
MODULES = {
    "attn/masking.py": ["tests/attn/test_masking.py"],
    "attn/scores.py": [
        "tests/attn/test_scores.py",
        "tests/attn/test_references.py",
        "tests/attn/test_registration.py",
        "tests/attn/test_modules.py",
        "tests/attn/test_every_kind.py::test_has_params_says_whether_the_kind_owns_parameters",
    ],
    "attn/functional.py": ["tests/attn/test_functional.py"],
    "attn/blockwise.py": ["tests/attn/test_blockwise.py"],
    "attn/additive_chunked.py": ["tests/attn/test_additive_chunked.py"],
    "attn/registry.py": [
        "tests/attn/test_registration.py",
        "tests/attn/test_modules.py",
        "tests/attn/test_scores.py",
    ],
    "experiments/common/sweeps.py": [
        "tests/experiments/common/test_sweeps.py",
        "-k",
        "not survives and not submitit and not report",
    ],
    "experiments/translation/metrics.py": ["tests/experiments/translation/test_metrics.py"],
    "experiments/translation/evaluation.py": [
        "tests/experiments/translation/test_evaluation.py",
        "tests/experiments/translation/test_attention_sentences.py",
        "-m",
        "not slow",
    ],
    "experiments/long_range/cache.py": ["tests/experiments/long_range/test_cache.py"],
}

PRELOAD = ("numpy", "jax", "jax.numpy", "flax.linen", "optax", "hypothesis", "pytest", "sacrebleu")

BINARY = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.Div,
    ast.Div: ast.Mult,
    ast.FloorDiv: ast.Mult,
    ast.Mod: ast.FloorDiv,
    ast.Pow: ast.Mult,
    ast.BitAnd: ast.BitOr,
    ast.BitOr: ast.BitAnd,
}
COMPARE = {
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
}
BOOLEAN = {ast.And: ast.Or, ast.Or: ast.And}


@dataclasses.dataclass(frozen=True)
class Mutant:
    index: int  # position among the module's mutation sites
    line: int
    description: str


def _skipped_nodes(tree, source_lines):
    """Ids of nodes never mutated: annotations, docstrings, `no mutate` lines."""
    skipped = set()

    def skip(node):
        if node is not None:
            skipped.update(id(n) for n in ast.walk(node))

    for node in ast.walk(tree):
        if isinstance(node, ast.arg):
            skip(node.annotation)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            skip(node.returns)
        elif isinstance(node, ast.AnnAssign):
            skip(node.annotation)
        lineno = getattr(node, "lineno", None)
        if lineno and "pragma: no mutate" in source_lines[lineno - 1]:
            skip(node)
    return skipped


def _sites(tree, source_lines):
    """(node, description, apply) for every mutation of `tree`, in a fixed order."""
    skipped = _skipped_nodes(tree, source_lines)
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, (ast.BinOp, ast.AugAssign)) and type(node.op) in BINARY:
            new = BINARY[type(node.op)]
            yield node, f"{type(node.op).__name__} -> {new.__name__}", _set(node, "op", new())
        elif isinstance(node, ast.Compare):
            for i, op in enumerate(node.ops):
                if type(op) in COMPARE:
                    new = COMPARE[type(op)]
                    yield node, f"{type(op).__name__} -> {new.__name__}", _set_op(node, i, new())
        elif isinstance(node, ast.BoolOp):
            new = BOOLEAN[type(node.op)]
            yield node, f"{type(node.op).__name__} -> {new.__name__}", _set(node, "op", new())
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.Not, ast.USub)):
            yield node, f"drop {type(node.op).__name__}", _replace_with(node, node.operand)
        elif isinstance(node, (ast.If, ast.While, ast.IfExp, ast.Assert)):
            yield node, "negate condition", _negate(node)
        elif isinstance(node, ast.Constant) and not isinstance(node.value, (str, bytes)):
            value = node.value
            if isinstance(value, bool):
                yield node, f"{value} -> {not value}", _set(node, "value", not value)
            elif isinstance(value, int):
                yield node, f"{value} -> {value + 1}", _set(node, "value", value + 1)
            elif isinstance(value, float):
                new = value * 2 if value else 1.0
                yield node, f"{value!r} -> {new!r}", _set(node, "value", new)


def _set(node, field, value):
    return lambda: setattr(node, field, value)


def _set_op(node, i, op):
    return lambda: node.ops.__setitem__(i, op)


def _replace_with(node, replacement):
    def apply():
        node.__class__ = ast.Call
        node.__dict__.clear()
        # `(lambda x: x)(operand)` keeps the expression's place in the tree.
        node.func = ast.Lambda(
            args=ast.arguments(
                posonlyargs=[], args=[ast.arg("x")], kwonlyargs=[], kw_defaults=[], defaults=[]
            ),
            body=ast.Name("x", ast.Load()),
        )
        node.args = [replacement]
        node.keywords = []

    return apply


def _negate(node):
    return lambda: setattr(node, "test", ast.UnaryOp(ast.Not(), node.test))


def mutants(path):
    source = open(path).read()
    tree = ast.parse(source)
    lines = source.splitlines()
    return [
        Mutant(i, node.lineno, description)
        for i, (node, description, _) in enumerate(_sites(tree, lines))
    ]


def mutated_source(path, mutant):
    source = open(path).read()
    tree = ast.parse(source)
    for i, (_, _, apply) in enumerate(_sites(tree, source.splitlines())):
        if i == mutant.index:
            apply()
            break
    return ast.unparse(ast.fix_missing_locations(copy.deepcopy(tree)))


def run_tests(workdir, test_args, timeout):
    """'passed', 'failed' or 'timeout' for the tests in a forked child."""
    pid = os.fork()
    if pid == 0:
        try:
            os.setpgid(0, 0)
            os.chdir(workdir)
            sys.path.insert(0, workdir)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            import pytest

            code = pytest.main(
                ["-q", "-x", "-n", "0", "-p", "no:cacheprovider", "-p", "no:randomly", *test_args]
            )
            os._exit(int(code))
        except BaseException:
            os._exit(99)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return "passed" if os.waitstatus_to_exitcode(status) == 0 else "failed"
        time.sleep(0.05)
    os.killpg(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return "timeout"


def copy_repository(destination):
    # README.md: a registry test checks its table of capabilities.
    names = ("attn", "experiments", "tests", "docs", "README.md", "setup.cfg", "pyproject.toml")
    for name in names + ("ruff.toml",):
        source = os.path.join(ROOT, name)
        target = os.path.join(destination, name)
        if os.path.isdir(source):
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        elif os.path.exists(source):
            shutil.copy(source, target)


def mutate_module(module, workdir, *, lines=(), timeout_factor=3.0):
    test_args = MODULES[module]
    original = open(os.path.join(ROOT, module)).read()
    target = os.path.join(workdir, module)
    start = time.monotonic()
    if run_tests(workdir, test_args, timeout=1800) != "passed":
        raise SystemExit(f"{module}: its tests fail before any mutation")
    timeout = timeout_factor * (time.monotonic() - start) + 10
    survivors, found = [], mutants(os.path.join(ROOT, module))
    if lines:
        found = [m for m in found if m.line in lines]
    print(f"{module}: {len(found)} mutants, tests take {time.monotonic() - start:.0f}s", flush=True)
    for mutant in found:
        with open(target, "w") as f:
            f.write(mutated_source(os.path.join(ROOT, module), mutant))
        outcome = run_tests(workdir, test_args, timeout)
        if outcome == "timeout":  # killed, but shown: on a busy machine, rerun with --lines
            print(f"  TIMEOUT {module}:{mutant.line} {mutant.description}", flush=True)
        if outcome == "passed":
            survivors.append(mutant)
            line = original.splitlines()[mutant.line - 1].strip()
            print(f"  SURVIVED {module}:{mutant.line} {mutant.description}: {line}", flush=True)
    with open(target, "w") as f:
        f.write(original)
    killed = len(found) - len(survivors)
    print(f"{module}: killed {killed}/{len(found)} ({100 * killed / max(len(found), 1):.0f}%)")
    return len(found), survivors


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", default=list(MODULES))
    parser.add_argument("--list", action="store_true", help="print the mutants, run nothing")
    parser.add_argument(
        "--lines", default="", help="only the mutants on these comma-separated lines (recheck)"
    )
    args = parser.parse_args(argv)
    unknown = [m for m in args.modules if m not in MODULES]
    if unknown:
        parser.error(f"unknown modules {unknown}; known: {', '.join(MODULES)}")
    if args.list:
        for module in args.modules:
            for m in mutants(os.path.join(ROOT, module)):
                print(f"{module}:{m.line} {m.description}")
        return 0
    for name in PRELOAD:
        __import__(name)
    with tempfile.TemporaryDirectory(prefix="mutate-") as workdir:
        os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", os.path.join(workdir, ".jax_cache"))
        os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
        os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "-1")
        copy_repository(workdir)
        lines = {int(n) for n in args.lines.split(",") if n}
        totals = {module: mutate_module(module, workdir, lines=lines) for module in args.modules}
    print("\nmodule: killed / mutants")
    for module, (count, survivors) in totals.items():
        print(f"  {module}: {count - len(survivors)}/{count}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
