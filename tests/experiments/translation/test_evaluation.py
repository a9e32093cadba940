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


class FixedLogits:
    """A model whose teacher-forced logits and weights are given."""

    def __init__(self, logits, weights):
        self.logits, self.weights = logits, weights

    def apply(self, params, source, target_input):
        return self.logits, self.weights


def test_eval_step_sums_loss_correct_and_tokens_over_non_padding_labels():
    logits = np.array(
        [[[0.1, 0.2, 2.0, 0.3], [0.2, 1.1, 0.2, 0.1], [0.5, 0.1, 0.2, 1.5], [3.0, 0.0, 0.0, 0.0]]],
        np.float32,
    )  # [batch 1, 4 positions, vocab 4]
    labels = np.array([[2, 1, 1, PAD]], np.int32)  # right, right, wrong (argmax 3), padding
    weights = np.full((1, 4, 2), 0.5, np.float32)
    batch = {"source": np.zeros((1, 2), np.int32), "target_input": labels, "target_output": labels}
    loss, correct, tokens, out_weights = evaluation.eval_step(
        FixedLogits(logits, weights), {}, batch
    )
    wide = logits[0].astype(np.float64)
    log_probs = wide - np.log(np.exp(wide).sum(-1))[:, None]
    expected = -(log_probs[0, 2] + log_probs[1, 1] + log_probs[2, 1])
    np.testing.assert_allclose(float(loss), expected, rtol=1e-6)
    assert (int(correct), int(tokens)) == (2, 3)
    np.testing.assert_array_equal(out_weights, weights)


def test_decode_batch_is_greedy_for_beam_size_1_and_beam_search_above(monkeypatch):
    calls = []

    def greedy_decode(model, params, source, *, max_steps):
        calls.append(("greedy", max_steps))
        return "greedy tokens", "greedy weights"

    def beam_search(model, params, source, *, max_steps, beam_size, length_penalty):
        calls.append(("beam", max_steps, beam_size, length_penalty))
        return "beam tokens", "beam weights", "scores"

    monkeypatch.setattr(evaluation.decode, "greedy_decode", greedy_decode)
    monkeypatch.setattr(evaluation.decode, "beam_search", beam_search)
    source = np.zeros((2, 7), np.int32)
    steps = evaluation.decode.max_decode_steps(7, 20)
    options = dict(max_length=20, length_penalty=0.6)
    assert evaluation.decode_batch(None, {}, source, beam_size=1, **options) == (
        "greedy tokens",
        "greedy weights",
    )
    assert evaluation.decode_batch(None, {}, source, beam_size=2, **options) == (
        "beam tokens",
        "beam weights",
    )
    assert calls == [("greedy", steps), ("beam", steps, 2, 0.6)]


def test_attention_maps_draw_each_sentences_rows_columns_and_title(monkeypatch, tmp_path):
    source_tok = WordVocabulary.build(["a b c"])
    target_tok = WordVocabulary.build(["x y z"])
    a, b, c = source_tok.encode("a b c")[0]
    x, y, z = target_tok.encode("x y z")[0]
    decoded = np.array([[x, y, EOS, PAD], [z, z, z, z]], np.int32)  # stops; runs to the limit
    weights = np.arange(24, dtype=np.float32).reshape(2, 4, 3)
    seen, drawn = {}, []

    def greedy_decode(model, params, source, *, max_steps):
        seen.update(source=source, max_steps=max_steps)
        return decoded, weights

    def attention_heatmap(matrix, *, column_labels, row_labels, title):
        drawn.append((np.asarray(matrix), column_labels, row_labels, title))
        return len(drawn)

    monkeypatch.setattr(evaluation.decode, "greedy_decode", greedy_decode)
    monkeypatch.setattr(evaluation.viz, "attention_heatmap", attention_heatmap)
    monkeypatch.setattr(evaluation.viz, "save_and_render", lambda figure, path: (figure, path))
    images = evaluation.attention_maps(
        None,
        {},
        ["a b", "c"],
        source_tok,
        target_tok,
        max_length=20,
        directory=str(tmp_path),
        title_prefix="step 5: ",
    )
    np.testing.assert_array_equal(seen["source"], [[a, b, EOS], [c, EOS, PAD]])
    assert seen["max_steps"] == evaluation.decode.max_decode_steps(3, 20)
    (first, columns0, rows0, title0), (second, columns1, rows1, title1) = drawn
    np.testing.assert_array_equal(first, weights[0, :3, :3])
    assert (columns0, rows0, title0) == (
        ["a", "b", "</s>"],
        ["x", "y", "</s>"],
        "step 5: a b -> x y",
    )
    np.testing.assert_array_equal(second, weights[1, :4, :2])
    assert (columns1, rows1, title1) == (["c", "</s>"], ["z"] * 4, "step 5: c -> z z z z")
    assert images == {"a_b": (1, str(tmp_path / "a_b.png")), "c": (2, str(tmp_path / "c.png"))}
    with pytest.raises(ValueError, match="need a Transformer"):
        evaluation.attention_maps(
            None, {}, ["a"], source_tok, target_tok, max_length=20, directory="", layers=True
        )


class Pieces:
    """A tokenizer stub: `word_of_token` returns the given word index per token."""

    def __init__(self, words):
        self.words = words

    def word_of_token(self, ids):
        assert len(ids) == len(self.words)
        return list(self.words)


def test_word_level_weights_cut_eos_and_padding_and_merge_pieces_into_words():
    batch = {
        "source": np.array([[5, 6, 7, EOS, PAD]], np.int32),
        "target_output": np.array([[8, 9, EOS, PAD]], np.int32),
    }
    weights = np.arange(20, dtype=np.float64).reshape(4, 5)  # [T, S] of row 0
    words = evaluation._word_level_weights(weights, batch, 0, Pieces([0, 1, 2]), Pieces([0, 1]))
    np.testing.assert_array_equal(words, weights[:2, :3])  # whole words: cut only
    # Source pieces 0 and 1 form word 0: their columns add up.
    words = evaluation._word_level_weights(weights, batch, 0, Pieces([0, 0, 1]), Pieces([0, 1]))
    np.testing.assert_array_equal(words, [[0 + 1, 2], [5 + 6, 7]])
    # Both target pieces form word 0: their rows are averaged.
    words = evaluation._word_level_weights(weights, batch, 0, Pieces([0, 1, 2]), Pieces([0, 0]))
    np.testing.assert_array_equal(words, [[2.5, 3.5, 4.5]])


class Axes:
    def __init__(self):
        self.rules = []

    def axvline(self, x, **style):
        self.rules.append((x, style))


class Figure:
    def __init__(self, **drawn):
        self.drawn, self.axes = drawn, [Axes()]


@pytest.mark.parametrize("layers, rollout", [(True, True), (True, False), (False, True)])
def test_transformer_pictures_cut_label_and_title_every_grid(
    monkeypatch, tmp_path, layers, rollout
):
    target_tok = WordVocabulary.build(["x y"])
    x, y = target_tok.encode("x y")[0]
    grid_shape = (1, 2, 3)  # [sentence, layer, head]
    maps = {
        "cross": np.arange(120.0).reshape(*grid_shape, 4, 5),
        "encoder_self": np.arange(150.0).reshape(*grid_shape, 5, 5),
        "decoder_self": np.arange(96.0).reshape(*grid_shape, 4, 4),
    }
    rollouts = (np.arange(20.0).reshape(1, 4, 5), -np.arange(16.0).reshape(1, 4, 4))
    seen = {}

    def teacher_forced_maps(model, params, source, target_input, *, layers, rollout):
        seen.update(target_input=target_input, layers=layers, rollout=rollout)
        return (maps if layers else None), (rollouts if rollout else None)

    monkeypatch.setattr(evaluation, "_teacher_forced_maps", teacher_forced_maps)
    monkeypatch.setattr(evaluation.viz, "attention_grid", lambda w, **kw: Figure(weights=w, **kw))
    monkeypatch.setattr(
        evaluation.viz, "attention_heatmap", lambda w, **kw: Figure(weights=w, **kw)
    )
    monkeypatch.setattr(evaluation.viz, "save_and_render", lambda figure, path: (figure, path))
    columns, row_labels = ["a", "b", "</s>"], ["x", "y", "</s>"]
    inputs = [evaluation.BOS, x, y]
    picture = ("a_b", "a b -> x y", columns, row_labels, inputs)
    images = evaluation._transformer_pictures(
        None,
        {},
        None,
        4,
        [picture],
        target_tok,
        directory=str(tmp_path),
        layers=layers,
        rollout=rollout,
    )
    np.testing.assert_array_equal(seen["target_input"], [[evaluation.BOS, x, y, 0]])
    assert (seen["layers"], seen["rollout"]) == (layers, rollout)
    expected = {}
    titles = [[f"layer {layer}, head {head}" for head in (1, 2, 3)] for layer in (1, 2)]
    prefix = ["<s>", "x", "y"]
    if layers:
        expected["layers/a_b.cross"] = (
            maps["cross"][0, :, :, :3, :3],
            row_labels,
            columns,
            "cross-attention",
        )
        expected["layers/a_b.encoder_self"] = (
            maps["encoder_self"][0, :, :, :3, :3],
            columns,
            columns,
            "encoder self-attention",
        )
        expected["layers/a_b.decoder_self"] = (
            maps["decoder_self"][0, :, :, :3, :3],
            prefix,
            prefix,
            "decoder self-attention",
        )
    if rollout:
        expected["rollout/a_b"] = None
    assert sorted(images) == sorted(expected)
    for name, (figure, path) in images.items():
        assert path == str(tmp_path / f"{name}.png")
        drawn = figure.drawn
        if name.startswith("rollout"):
            both = np.concatenate([rollouts[0][0, :3, :3], rollouts[1][0, :3, :3]], -1)
            np.testing.assert_array_equal(drawn["weights"], both)
            assert drawn["column_labels"] == columns + prefix and drawn["row_labels"] == row_labels
            assert (
                drawn["title"]
                == "a b -> x y\nattention rollout to the source words | the target prefix"
            )
            assert figure.axes[0].rules == [(2.5, {"color": "white", "linewidth": 2})]
            continue
        weights, grid_rows, grid_columns, what = expected[name]
        np.testing.assert_array_equal(drawn["weights"], weights)
        assert (drawn["row_labels"], drawn["column_labels"]) == (grid_rows, grid_columns)
        assert drawn["panel_titles"] == titles
        assert drawn["title"] == f"a b -> x y\n{what}: layers (rows) x heads (columns)"
