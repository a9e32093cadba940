"""Image data the experiments share: the idx format and the datasets' sources.

A shared layer like `experiments.text`: the vision experiment and the
long-range comparison's pixel tasks both read images through it.
"""
