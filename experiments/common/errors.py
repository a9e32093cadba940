"""How a run can end other than by finishing, shared by every experiment."""

from __future__ import annotations


class ConfigError(ValueError):
    """Bad input found before training starts; launch.py exits with code 2."""


class Diverged(FloatingPointError):
    """The loss became NaN or infinite at `step`."""

    def __init__(self, step: int, loss: float):
        super().__init__(f"training diverged: loss {loss} at step {step}")
        self.step = step


class Interrupted(Exception):
    """SIGTERM arrived; a checkpoint was saved at `step` and a rerun resumes there."""

    def __init__(self, step: int):
        super().__init__(
            f"interrupted by SIGTERM at step {step}; checkpoint saved, rerun to resume"
        )
        self.step = step
