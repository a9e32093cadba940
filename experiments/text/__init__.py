"""Text shared by the experiments: token ids, tokenizers, word splitting, corpora, the toy corpus.

`token_ids` holds the reserved ids (PAD, BOS, EOS, UNK) that the models and
every tokenizer agree on; it imports nothing, so a model can use it without
pulling in a tokenizer library.
"""
