"""Multi-process runs: joining them, and naming the process that was lost.

`initialize` joins a multi-process run (jax.distributed) with one timeout for
peers that stop answering. When a process dies, the others learn it at their
next collective, which fails at once (its connections close); `lost_processes`
then names the processes that are gone, so launch.py can stop every survivor
with one line, instead of JAX's shutdown barrier waiting for the dead peer and
aborting with thread dumps. A restart of every process with the same command
resumes from the last checkpoint, which all processes saved together.
"""

from __future__ import annotations

import time

import jax

from experiments.common.errors import ConfigError

# The key-value store of JAX's coordination service (held by process 0) is
# where survivors of a failed collective answer the roll call.
_ROLL_CALL = "attn/survivors/"


def initialize(
    coordinator_address: str | None,
    num_processes: int | None,
    process_id: int | None,
    *,
    peer_timeout_seconds: int,
) -> None:
    """Joins the run; a peer silent for `peer_timeout_seconds` counts as dead.

    The coordination service's heartbeat uses the timeout: a peer that hangs
    without closing its connections (a frozen machine) stops the others after
    it, through JAX's own error. Unset arguments come from the cluster's
    environment (SLURM, Cloud TPU, ...), as jax.distributed.initialize reads it.
    """
    if peer_timeout_seconds < 1:
        raise ConfigError(f"--peer_timeout_seconds={peer_timeout_seconds}; valid: 1 or more")
    try:
        jax.distributed.initialize(
            coordinator_address=coordinator_address,
            num_processes=num_processes,
            process_id=process_id,
            heartbeat_timeout_seconds=peer_timeout_seconds,
            shutdown_timeout_seconds=peer_timeout_seconds,
            initialization_timeout=max(peer_timeout_seconds, 60),
        )
    except (ValueError, TypeError) as error:  # a flag missing, and no cluster to read it from
        raise ConfigError(
            f"cannot join a multi-host run: {error} (give --coordinator_address, "
            "--num_processes and --process_id, or run inside a SLURM or Cloud TPU job)"
        ) from error


def _client():
    # jax.distributed exposes no public handle on its client; orbax reads the
    # same attribute. Without it no process can be named.
    from jax._src import distributed

    return getattr(distributed.global_state, "client", None)


def lost_processes(wait_seconds: float) -> list[int] | None:
    """After a collective failed: the indices of the processes that are gone.

    Every survivor posts its index to the coordination service and waits up to
    `wait_seconds` for the others' (they reach the same failure at their own
    next collective); an index never posted is a lost process. If the service
    itself is unreachable, process 0, which holds it, is the one lost.

    Returns None when this is not a multi-process run or the client cannot be
    reached through JAX, [] when every process answered (the failure was not
    a lost peer).
    """
    count = jax.process_count()
    client = _client()
    if count == 1 or client is None:
        return None
    me = jax.process_index()
    deadline = time.monotonic() + wait_seconds
    try:
        client.key_value_set(f"{_ROLL_CALL}{me}", "alive")
        while True:
            answered = {
                int(key.rsplit("/", 1)[-1]) for key, _ in client.key_value_dir_get(_ROLL_CALL)
            }
            if len(answered) == count or time.monotonic() >= deadline:
                break
            time.sleep(0.2)
    except Exception:  # noqa: BLE001 - any failure to reach the service means its host is gone
        return [0]
    return sorted(set(range(count)) - answered)


def describe_loss(lost: list[int], error: BaseException) -> str:
    """The one line a survivor prints and writes to status.json."""
    count = jax.process_count()
    names = ", ".join(map(str, lost))
    what = f"process {names}" if len(lost) == 1 else f"processes {names}"
    text = str(error).strip()
    cause = text.splitlines()[0][:200] if text else type(error).__name__
    return (
        f"lost {what} of {count} ({type(error).__name__}: {cause}); run every process again "
        "with the same command to resume from the last checkpoint"
    )
