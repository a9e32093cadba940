"""Imports go one way: launch.py -> experiments -> experiments.models -> attn.

Every module of the project is parsed (nothing is imported) and each of its
imports, at the top or inside a function, is checked against what its layer
may import:

- `attn` imports only `attn` (and third-party libraries);
- `experiments.text` and `experiments.images` import only themselves;
- `experiments.models` imports `attn`, `experiments.text` and itself, never an
  experiment package or `experiments.common`;
- `experiments.common` imports `attn` and itself;
- an experiment package (`experiments.translation`, ...) imports `attn`, the
  shared layers above and itself, never another experiment package;
- config files (`experiments.configs` and the aliases next to it) import
  the shared layers and configs, never an experiment package's code;
- nothing but launch.py, examples and tests imports `benchmarks`, and nothing
  imports launch.py, an example or a test.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
SHARED = (
    "attn",
    "experiments.common",
    "experiments.models",
    "experiments.text",
    "experiments.images",
)
TOP_LEVEL = ("attn", "benchmarks", "examples", "experiments", "launch", "tests")


def _module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, pathlib.Path]:
    """name -> path of every module of the library, the experiments, benchmarks and scripts."""
    paths = [ROOT / "launch.py"]
    for folder in ("attn", "benchmarks", "examples", "experiments"):
        paths += sorted((ROOT / folder).rglob("*.py"))
    return {_module_name(p): p for p in paths if p.exists()}


def experiment_packages() -> set[str]:
    """`experiments.X` for every package X under experiments/ that is not a shared layer."""
    return {
        f"experiments.{p.parent.name}"
        for p in (ROOT / "experiments").glob("*/__init__.py")
        if f"experiments.{p.parent.name}" not in SHARED + ("experiments.configs",)
    }


def imported_names(module: str, path: pathlib.Path) -> list[tuple[int, str]]:
    """(line, dotted name) of every import in the file, relative ones resolved."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            # `from experiments import translation` imports the package experiments.translation.
            names += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return names


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _layer(module: str, packages: set[str]) -> str:
    for prefix in ("attn", "benchmarks", "examples", "launch", "tests"):
        if _within(module, prefix):
            return prefix
    for prefix in SHARED + ("experiments.configs",) + tuple(sorted(packages)):
        if _within(module, prefix):
            return prefix
    if module == "experiments":
        return "experiments"
    return (
        "experiments.configs"  # a config file next to the packages, e.g. experiments/translate.py
    )


def allowed(module: str, name: str, packages: set[str]) -> bool:
    """Whether `module` may import `name` (a dotted name of a module or of a name in one)."""
    if name.split(".")[0] not in TOP_LEVEL:
        return True  # standard library or third party
    layer = _layer(module, packages)
    target = _layer(name, packages) if name != "experiments" else "experiments"
    if target in ("launch", "examples", "tests"):
        return layer == target
    if target == "benchmarks":
        return layer in ("benchmarks", "launch", "examples")
    rules = {
        "attn": {"attn"},
        "experiments.text": {"experiments.text"},
        "experiments.images": {"experiments.images"},
        "experiments.models": {"attn", "experiments.text", "experiments.models"},
        "experiments.common": {"attn", "experiments.common"},
        "experiments.configs": set(SHARED) | {"experiments.configs"},
        "experiments": set(SHARED) | {"experiments.configs"},
    }
    if layer in rules:
        return target in rules[layer]
    if layer in packages:
        return target in set(SHARED) | {layer}
    return True  # launch.py, benchmarks, examples: anything below them


def violations(modules: dict[str, pathlib.Path]) -> list[str]:
    packages = experiment_packages()
    found = []
    for module, path in sorted(modules.items()):
        for line, name in imported_names(module, path):
            if not allowed(module, name, packages):
                found.append(f"{path.relative_to(ROOT)}:{line}: {module} imports {name}")
    return found


def test_every_import_goes_down_the_layers():
    assert violations(project_modules()) == []


def test_there_are_modules_and_experiment_packages_to_check():
    modules = project_modules()
    assert {"attn", "experiments.models.transformer", "launch"} <= set(modules)
    assert {"experiments.translation", "experiments.vision"} <= experiment_packages()


@pytest.mark.parametrize(
    "module, name, ok",
    [
        ("attn.modules", "experiments.models.transformer", False),
        ("attn.modules", "benchmarks.attention", False),
        ("experiments.models.transformer", "experiments.translation.decode", False),
        ("experiments.models.transformer", "experiments.common.parallel", False),
        ("experiments.models.causal_lm", "experiments.text.token_ids", True),
        ("experiments.vision.train", "experiments.translation.decode", False),
        ("experiments.vision.train", "experiments.models.vision", True),
        ("experiments.vision.train", "experiments.vision.data", True),
        ("experiments.text.corpora", "experiments.models.rnn", False),
        ("experiments.images.idx", "experiments.vision.data", False),
        ("experiments.long_range.data", "experiments.images.sources", True),
        ("experiments.common.report", "launch", False),
        ("launch", "experiments.common.report", True),
        ("experiments.translation.train", "numpy", True),
    ],
)
def test_the_rules(module, name, ok):
    packages = experiment_packages() | {"experiments.translation", "experiments.vision"}
    assert allowed(module, name, packages) is ok
