"""Image classification with local and global self-attention (`experiments/configs/vision.py`)."""
