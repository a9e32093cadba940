"""Config files, one per experiment setup: `python launch.py --config=experiments/configs/NAME.py:ARG`."""
