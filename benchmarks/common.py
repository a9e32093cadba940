"""What every benchmark here shares: the machine line, gradients, plan sizes, cells."""

from __future__ import annotations

import datetime
import json
import os
import platform

import jax
import jax.numpy as jnp


def machine() -> dict:
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if "model name" in line)
    except (OSError, StopIteration):
        pass
    device = jax.devices()[0]
    return dict(
        cpu=cpu,
        cores=os.cpu_count(),
        backend=jax.default_backend(),
        device=getattr(device, "device_kind", str(device)),
        jax=jax.__version__,
        date=datetime.date.today().isoformat(),
    )


def machine_line(m: dict) -> str:
    return (
        f"{m['cpu']}, {m['cores']} cores, backend {m['backend']} ({m['device']}), "
        f"jax {m['jax']}, {m['date']}"
    )


def write_results(out: str, name: str, payload: dict, markdown: str, *, indent: int = 1) -> None:
    """`out/NAME.json` (the raw rows) and `out/NAME.md` (the table), `out` created if need be."""
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, f"{name}.json"), "w") as f:
        json.dump(payload, f, indent=indent)
    with open(os.path.join(out, f"{name}.md"), "w") as f:
        f.write(markdown)


def with_gradients(fn, argnums):
    def loss(*args):
        return jnp.sum(fn(*args).astype(jnp.float32))

    return jax.grad(loss, argnums=argnums)


def plan_bytes(compiled) -> int:
    stats = compiled.memory_analysis()
    return int(
        stats.argument_size_in_bytes
        + stats.output_size_in_bytes
        + stats.temp_size_in_bytes
        - stats.alias_size_in_bytes
    )


def mib(value) -> str:
    return "-" if value is None else f"{value / 2**20:,.1f}"


def num(value, fmt="{:.2f}") -> str:
    return "-" if value is None else fmt.format(value)
