"""Decoder-only causal Transformer language model on any text (config: experiments/language_model.py)."""
