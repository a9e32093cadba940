"""Image classification with local and global self-attention (`experiments/classify.py`)."""
