"""Decoder-only causal Transformer language model on any text (config: experiments/configs/language_model.py)."""
