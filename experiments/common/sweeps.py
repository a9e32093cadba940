"""Sweeps declared next to the config they sweep, expanded into trials.

A config file may define `get_sweeps() -> dict[name, spec]` beside
`get_config`. A spec is a plain dict:

    {
        "config": "additive,demo",          # the get_config argument of every trial
        "grid": {                           # every combination of these values
            "model.attention": ["additive", "dot", "none"],
            "seed": [0, 1],
        },
        "random": {                         # optional: draws, crossed with the grid
            "count": 4, "seed": 0,
            "fields": {
                "train.learning_rate": ["log_uniform", 1e-4, 1e-2],
                "model.encoder_size": ["choice", 64, 128, 256],
                "train.warmup_steps": ["int_uniform", 0, 500],
            },
        },
        "fixed": {"train.steps": 2000},     # optional: the same for every trial
        "trials": [{...}, {...}],           # optional: explicit override sets,
    }                                       # crossed with the grid and draws

A trial of "trials" may name its own get_config argument under "config"
(e.g. `{"config": "mqar,cpu", "data.task": "mqar"}`), for sweeps across
presets that set different fields; "config" is not an override and not part
of the trial's name.

Each trial is a set of `--config.FIELD=VALUE` overrides and a directory name
made from the swept values, so a trial keeps its workdir across reruns.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import itertools
import math
import os
import random
import re
from typing import Any

DISTRIBUTIONS = ("log_uniform", "uniform", "int_uniform", "choice")


@dataclasses.dataclass(frozen=True)
class Trial:
    """One run of a sweep.

    Attributes:
      name: directory name, e.g. "attention-dot__seed-1".
      config_arg: the argument after the colon in --config=FILE:ARG.
      overrides: field -> value (fixed fields included).
      swept: the fields that vary across the sweep, in declaration order.
    """

    name: str
    config_arg: str
    overrides: dict[str, Any]
    swept: tuple[str, ...]

    def flag_args(self) -> list[str]:
        return [
            f"--config.{field}={format_value(value)}" for field, value in self.overrides.items()
        ]


def format_value(value: Any, *, nested: bool = False) -> str:
    """A value as config_flags parses it back (tuples as '(a, b)').

    A string field takes the flag's text as it is, but inside a tuple the text
    is parsed as a Python literal, so strings there are quoted.
    """
    if isinstance(value, (list, tuple)):
        items = ", ".join(format_value(v, nested=True) for v in value)
        return "(" + items + ("," if len(value) == 1 else "") + ")"
    if isinstance(value, str) and nested:
        return repr(value)
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _load_module(config_path: str):
    path = config_path.split(":", 1)[0]
    if not os.path.isfile(path):
        raise ValueError(f"config file not found: {path}")
    spec = importlib.util.spec_from_file_location("sweep_config", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def trial_configs(config_path: str, trials: list[Trial]) -> list:
    """Each trial's config with the sweep's own values applied (and command-line text where
    the field holds text, e.g. `model.architecture`), to see what each trial reads."""
    get_config = _load_module(config_path).get_config
    configs = []
    for trial in trials:
        config = get_config(trial.config_arg) if trial.config_arg else get_config()
        for field, value in trial.overrides.items():
            *sections, name = field.split(".")
            node = config
            try:
                for section in sections:
                    node = node[section]
                if isinstance(value, str) and not isinstance(node[name], str):
                    continue  # command-line text for a number or tuple: its trial parses it
                node[name] = value
            except (KeyError, AttributeError, TypeError):
                continue  # a field the config lacks: that trial stops on it in one line
        configs.append(config)
    return configs


def load_sweeps(config_path: str) -> dict[str, dict]:
    """The `get_sweeps()` of a config file (the part before any ':')."""
    path = config_path.split(":", 1)[0]
    module = _load_module(config_path)
    if not hasattr(module, "get_sweeps"):
        raise ValueError(f"{path} declares no sweeps (it has no get_sweeps() function)")
    return module.get_sweeps()


def expand(name: str, sweeps: dict[str, dict]) -> list[Trial]:
    """The trials of sweep `name`; ValueError naming the valid sweeps if unknown."""
    if name not in sweeps:
        raise ValueError(f"unknown sweep {name!r}; valid sweeps: {', '.join(sorted(sweeps))}")
    spec = sweeps[name]
    unknown = set(spec) - {"config", "grid", "random", "fixed", "trials"}
    if unknown:
        raise ValueError(
            f"sweep {name!r} has unknown keys {sorted(unknown)}; "
            f"valid: config, grid, random, fixed, trials"
        )
    grid = dict(spec.get("grid", {}))
    for field, values in grid.items():
        if not isinstance(values, (list, tuple)) or not values:
            raise ValueError(
                f"sweep {name!r}: grid field {field!r} needs a non-empty list, got {values!r}"
            )
    draws = _random_draws(name, spec.get("random"))
    explicit = list(spec.get("trials", [])) or [{}]
    listed = tuple(dict.fromkeys(f for overrides in explicit for f in overrides if f != "config"))
    swept = listed + tuple(grid) + (tuple(spec["random"]["fields"]) if draws else ())
    trials = []
    for chosen, combination, draw in itertools.product(
        explicit, itertools.product(*grid.values()), draws or [{}]
    ):
        overrides = dict(spec.get("fixed", {}))
        overrides.update({f: v for f, v in chosen.items() if f != "config"})
        overrides.update(zip(grid, combination))
        overrides.update(draw)
        trials.append(
            Trial(
                name=_trial_name({f: overrides[f] for f in swept if f in overrides}),
                config_arg=chosen.get("config", spec.get("config", "")),
                overrides=overrides,
                swept=swept,
            )
        )
    names = [t.name for t in trials]
    if len(set(names)) != len(names):
        raise ValueError(f"sweep {name!r} produces duplicate trials: {names}")
    return trials


def with_overrides(trials: list[Trial], overrides: dict[str, str], sweep: str) -> list[Trial]:
    """The trials with `--config.FIELD=VALUE` flags of the command line applied to each.

    They replace the sweep's fixed value of a field (e.g. a shorter
    `train.steps`); a field the sweep varies is refused, as it would make
    every trial the same.
    """
    swept = [field for field in overrides if trials and field in trials[0].swept]
    if swept:
        raise ValueError(
            f"--config.{swept[0]} is swept by --sweep={sweep}; remove it from the command "
            f"line or use a sweep that does not vary it"
        )
    return [dataclasses.replace(t, overrides={**t.overrides, **overrides}) for t in trials]


def _random_draws(name: str, spec: dict | None) -> list[dict[str, Any]]:
    if not spec:
        return []
    rng = random.Random(spec.get("seed", 0))
    draws = []
    for _ in range(int(spec.get("count", 1))):
        draw = {}
        for field, (distribution, *args) in spec["fields"].items():
            if distribution == "log_uniform":
                value = math.exp(rng.uniform(math.log(args[0]), math.log(args[1])))
                draw[field] = float(f"{value:.3g}")
            elif distribution == "uniform":
                draw[field] = float(f"{rng.uniform(*args):.3g}")
            elif distribution == "int_uniform":
                draw[field] = rng.randint(*args)
            elif distribution == "choice":
                draw[field] = rng.choice(args)
            else:
                raise ValueError(
                    f"sweep {name!r}: unknown distribution {distribution!r} for {field!r}; "
                    f"valid: {', '.join(DISTRIBUTIONS)}"
                )
        draws.append(draw)
    return draws


def _trial_name(values: dict[str, Any]) -> str:
    if not values:
        return "trial"
    parts = []
    for field, value in values.items():
        text = format_value(value).replace(" ", "")
        parts.append(f"{field.rsplit('.', 1)[-1]}-{re.sub(r'[^A-Za-z0-9.+-]+', '_', text)}")
    return "__".join(parts)
