"""Models shared by the experiments; they import only `attn`, `experiments.text` and libraries.

- `transformer`: the encoder-decoder Transformer (`Transformer`), built of
  the layers in `transformer_layers`;
- `causal_lm`: the decoder-only language model (`CausalLM`);
- `rnn`: the RNN encoder-decoder with an attention unit (`Seq2Seq`);
- `vision`: the image classifiers (ResNet-style with local self-attention, ViT).
"""
