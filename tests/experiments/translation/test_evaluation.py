"""evaluate_split's glue: batches, padding rows, metrics and alignment links, with a stub model."""

import types

import numpy as np
import pytest

from experiments.text.token_ids import EOS_ID as EOS
from experiments.text.token_ids import PAD_ID as PAD
from experiments.text.tokenizers import WordVocabulary
from experiments.text.toy_corpus import SentencePair
from experiments.translation import batching, evaluation, metrics

# (source word, target word) links; the first is a 3-cycle, so its transpose
# is another permutation and reads off different links.
PAIRS = [
    SentencePair("a b c", "x y z", ((0, 1), (1, 2), (2, 0))),
    SentencePair("b c", "z", ((0, 0),)),
    SentencePair("c a", "y x", ()),  # no alignment: no AER contribution
]
WRONG = {1: "x"}  # the stub translates pair 1 wrongly, the others exactly
LINK, OTHER = 0.9, 0.05


def stub_weights(batch, pairs):
    """Teacher-forced weights `[batch, T, S]`: each target word on its true source word."""
    weights = np.full(batch["target_output"].shape + batch["source"].shape[1:], OTHER, np.float32)
    for row, index in enumerate(batch["index"]):
        if index >= 0:
            for source, target in pairs[index].alignment:
                weights[row, target, source] = LINK
    return weights


@pytest.fixture
def split(monkeypatch):
    source_tokenizer = WordVocabulary.build([p.source for p in PAIRS])
    target_tokenizer = WordVocabulary.build([p.target for p in PAIRS])
    batches, _ = batching.eval_batches(
        PAIRS, source_tokenizer, target_tokenizer, batch_size=2, max_length=None
    )
    assert batches[-1]["index"].tolist() == [2, -1]  # a padding row

    def eval_step(model, params, batch):
        tokens = int((batch["target_output"] != PAD).sum())
        return 2.0 * tokens, tokens - 1, tokens, stub_weights(batch, PAIRS)

    def decode_batch(model, params, source, **options):
        batch = next(b for b in batches if b["source"] is source)
        decoded = np.full_like(batch["target_output"], PAD)
        for row, index in enumerate(batch["index"]):
            if index >= 0:
                text = WRONG.get(int(index), PAIRS[index].target)
                ids = target_tokenizer.encode(text)[0] + [EOS]
                decoded[row, : len(ids)] = ids
        return decoded, None

    monkeypatch.setattr(evaluation, "eval_step", eval_step)
    monkeypatch.setattr(evaluation, "decode_batch", decode_batch)
    config = types.SimpleNamespace(beam_size=1, length_penalty=0.6, length_buckets=(1, 3))
    return dict(
        pairs=PAIRS,
        batches=batches,
        target_tokenizer=target_tokenizer,
        source_tokenizer=source_tokenizer,
        eval_config=config,
    )


def evaluate(split, has_attention=True):
    return evaluation.evaluate_split(
        None, None, **split, max_length=20, has_attention=has_attention
    )


def test_metrics_of_a_split_with_known_alignments(split):
    result = evaluate(split)
    hypotheses = ["x y z", "x", "y x"]
    references = [p.target for p in PAIRS]
    # Target tokens with EOS: 4 + 2 + 3 = 9; the stub gets one wrong per batch.
    assert result["examples"] == 3
    assert result["loss"] == pytest.approx(2.0)
    assert result["token_accuracy"] == pytest.approx(7 / 9)
    assert result["bleu"] == pytest.approx(metrics.bleu(hypotheses, references))
    assert result["exact_match"] == pytest.approx(2 / 3)
    assert result["samples"] == [
        {"hypothesis": h, "reference": r} for h, r in zip(hypotheses, references)
    ]
    assert result["by_length"] == metrics.by_length(
        [3, 2, 2], hypotheses, references, bucket_edges=[1, 3]
    )
    # The attention sits on the true links, so the AER is 0: read on the wrong
    # axis, the 3-cycle's transpose would miss all three of its links.
    assert result["aer"] == 0.0 and result["aer_examples"] == 2
    wrong_axis = metrics.alignment_error_rate(
        [metrics.attention_to_links(stub_weights(split["batches"][0], PAIRS)[0, :3, :3].T)],
        [set(PAIRS[0].alignment)],
    )
    assert wrong_axis == 1.0


def test_no_aer_without_attention(split):
    result = evaluate(split, has_attention=False)
    assert "aer" not in result and "aer_examples" not in result
    assert result["examples"] == 3
