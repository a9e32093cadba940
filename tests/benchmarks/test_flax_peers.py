"""The Flax-peer benchmark: loading a checkout's models, the shared step, the ratios."""

import json
import textwrap

import numpy as np
import pytest

from benchmarks import flax_peers
from benchmarks.train_step import Case

# Stand-ins with the interface of Flax's examples/wmt and examples/lm1b models.py
# (a config dataclass; the model shifts its targets right and returns logits).
_STUB = """
import dataclasses
import flax.linen as nn
import jax.numpy as jnp


@dataclasses.dataclass(frozen=True)
class TransformerConfig:
    vocab_size: int
    output_vocab_size: int
    share_embeddings: bool = False
    logits_via_embedding: bool = False
    emb_dim: int = 8
    num_heads: int = 1
    num_layers: int = 1
    qkv_dim: int = 8
    mlp_dim: int = 8
    max_len: int = 8
    dropout_rate: float = 0.1
    attention_dropout_rate: float = 0.1
    deterministic: bool = False


def shift_right(x):
    return jnp.pad(x, ((0, 0), (1, 0)))[:, :-1]


class {name}(nn.Module):
    config: TransformerConfig

    @nn.compact
    def __call__(self, *inputs):
        c = self.config
        x = nn.Embed(c.vocab_size, c.emb_dim)(shift_right(inputs[-1]))
        x = nn.Dropout(c.dropout_rate, deterministic=c.deterministic)(x)
        return nn.Dense(c.output_vocab_size)(x)
"""


@pytest.fixture
def examples(tmp_path):
    root = tmp_path / "flax" / "examples"
    for folder, name in (("wmt", "Transformer"), ("lm1b", "TransformerLM")):
        (root / folder).mkdir(parents=True)
        (root / folder / "models.py").write_text(textwrap.dedent(_STUB).replace("{name}", name))
    return tmp_path / "flax"


@pytest.mark.slow
def test_both_peers_run_beside_ours_and_the_table_is_their_timings(examples, tmp_path):
    out = tmp_path / "out"
    rows = flax_peers.main(["--flax-examples", str(examples), "--smoke", "--out", str(out)])
    assert [r["experiment"] for r in rows] == ["translation", "language_model"]
    saved = json.loads((out / "flax_peers.json").read_text())
    # The stubs hold an embedding and a dense layer at the tiny presets' sizes.
    t, lm = saved["rows"]
    assert t["peer_parameters"] == 500 * 16 + 16 * 500 + 500  # tiny: vocabulary 500, d 16
    assert lm["peer_parameters"] == 500 * 16 + 16 * 500 + 500
    for row in saved["rows"]:
        assert row["speedup"] == pytest.approx(row["peer_ms"] / row["ours_ms"])
        assert np.isfinite(row["ours_loss"]) and np.isfinite(row["peer_loss"])
    text = (out / "flax_peers.md").read_text()
    assert f"| {t['ours_ms']:.1f} | {t['peer_ms']:.1f} | {t['speedup']:.2f}x" in text


def _case(times):
    params = {"w": np.zeros((2, 3))}
    state = type("State", (), {"params": params})()
    return Case(
        "translation", "m", "demo", None, state, (), (4, 5, 6), 1, 1, list(times), {"loss": 1.5}
    )


def test_speedup_is_the_peers_time_over_ours_per_best_round_and_per_round():
    row = flax_peers.ratio_row(_case([2.0, 1.0, 4.0]), _case([3.0, 3.0, 2.0]))
    assert row["speedup"] == pytest.approx(2.0)  # best rounds: 2.0 / 1.0
    assert row["round_speedups"] == pytest.approx([1.5, 3.0, 0.5])
    assert (row["ours_ms"], row["peer_ms"]) == (1000.0, 2000.0)
    assert row["ours_parameters"] == row["peer_parameters"] == 6


def test_the_checkout_or_its_examples_folder_is_accepted(examples):
    assert flax_peers.examples_folder(str(examples)) == str(examples / "examples")
    assert flax_peers.examples_folder(str(examples / "examples")) == str(examples / "examples")
    models = flax_peers.import_peer(str(examples / "examples"), "language_model")
    assert hasattr(models, "TransformerLM") and not hasattr(models, "Transformer")
    assert models.TransformerConfig(4, 4).emb_dim == 8


@pytest.mark.parametrize(
    "argv, named",
    [
        (["--flax-examples", "/no/such/flax"], "'/no/such/flax'"),
        (["--flax-examples", ".", "--only", "speech"], "'speech'"),
        (["--flax-examples", ".", "--rounds", "0"], "--rounds=0"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(argv, named, capsys):
    with pytest.raises(SystemExit) as exit_info:
        flax_peers.main(argv)
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("flax_peers") or "error:" in error
    assert named in error
