"""The four image classifiers compared: convolution, local attention, global attention.

- "conv": a small pre-activation ResNet: a 3x3 convolution stem, then
  bottleneck blocks (1x1 down, 3x3 convolution, 1x1 up) in stages that halve
  the resolution with a strided convolution.
- "conv_stem_attention": the same with every block's 3x3 convolution replaced
  by local self-attention (`attn.LocalSelfAttention2D`, k x k windows, spatial
  downsampling by average pooling after attention): the paper's best
  arrangement, convolution in the stem and attention in the blocks.
- "full_attention": attention in the stem too, so every spatial interaction
  is attention. The stem is the paper's spatially aware attention stem on
  the pixels (`attn.SpatiallyAwareStem2D`: values mixed by window position),
  or, with `attention_stem="pointwise"`, a 1x1 projection of the pixels then
  plain local self-attention (which can only average intensities).
- "vit": global self-attention over non-overlapping patches (ViT): a patch
  embedding, learned position embeddings, pre-norm Transformer blocks with
  `attn.MultiHeadAttention`, mean pooling.

A self-attention layer over k x k windows has 3 C^2 + k C parameters where a
3x3 convolution has 9 C^2, so at equal widths the attention variants have
fewer parameters than the convolutional baseline.

Models take images as float `[batch, H, W, C]` (normalised) and return logits
`[batch, classes]`. Attention weights are sown into the "intermediates"
collection (see `attention_maps`).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import re
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

import attn
from attn import local2d
from attn.attention_stem import SpatiallyAwareStem2D
from attn.local2d import LocalSelfAttention2D

VARIANTS = ("conv", "conv_stem_attention", "full_attention", "vit")
ATTENTION_STEMS = ("spatially_aware", "pointwise")


def _norm(features: int) -> nn.Module:
    # GroupNorm: no batch statistics to carry, so train and eval are one function.
    return nn.GroupNorm(num_groups=math.gcd(8, features))


class Spatial(nn.Module):
    """Spatial mixing: a 3x3 convolution, local self-attention, or the attention stem."""

    kind: str  # "conv" | "attention" | "attention_stem"
    features: int
    strides: int = 1
    kernel_size: int = 7
    num_heads: int = 4
    relative_bias: bool = False
    logit_scale: float | None = None
    form: str = "lean"
    unroll: bool = False
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        if self.kind == "conv":
            return nn.Conv(
                self.features,
                (3, 3),
                strides=self.strides,
                padding="SAME",
                use_bias=False,
                dtype=self.dtype,
            )(x)
        if self.kind == "attention_stem":
            layer = SpatiallyAwareStem2D
        else:
            layer = functools.partial(
                LocalSelfAttention2D,
                relative_bias=self.relative_bias,
                logit_scale=self.logit_scale,
                form=self.form,
            )
        y, weights = layer(
            num_heads=self.num_heads,
            kernel_size=self.kernel_size,
            features=self.features,
            strides=self.strides,
            unroll=self.unroll,
            dtype=self.dtype,
            name="attention",
        )(x)
        self.sow("intermediates", "local_attention", weights)
        return y


def mix_width(width: int, blocks: str, attention_mix: float) -> int:
    """Channels a block of output width `width` mixes at.

    Convolutional blocks mix at half the width (the ResNet bottleneck);
    attention blocks at `attention_mix` of it: 1/2 as in the paper (fewer
    parameters than the convolution: 3 C^2 against 9 C^2 for the mixing), or
    3/4 for about the parameters of the convolutional block.
    """
    return width // 2 if blocks == "conv" else int(round(width * attention_mix))


class Bottleneck(nn.Module):
    """Pre-activation bottleneck: x + up(mix(down(x))), mixing at width `mid`."""

    features: int
    mid: int
    strides: int
    spatial: Callable[..., nn.Module]

    @nn.compact
    def __call__(self, x):
        mid = self.mid
        y = nn.relu(_norm(x.shape[-1])(x))
        shortcut = x
        if self.strides > 1 or x.shape[-1] != self.features:
            shortcut = nn.Dense(self.features, use_bias=False, name="shortcut")(
                local2d.pool(y, self.strides)
            )
        y = nn.Dense(mid, use_bias=False, name="down")(y)
        y = nn.relu(_norm(mid)(y))
        y = self.spatial(features=mid, strides=self.strides, name="mix")(y)
        y = nn.relu(_norm(mid)(y))
        y = nn.Dense(self.features, use_bias=False, name="up")(y)
        return shortcut + y


class ResNet(nn.Module):
    """Stem, stages of bottleneck blocks (the first of each later stage halves H and W), head.

    stem: "conv" (3x3 convolution) or "attention" (`attention_stem`:
    "spatially_aware", the paper's stem, or "pointwise", a 1x1 projection then
    local self-attention), downsampling by `stem_strides` (a strided
    convolution, or pooling after attention). blocks: "conv" or "attention", the spatial
    mixing of every block, at `mix_width` channels.
    """

    num_classes: int
    stem: str = "conv"
    blocks: str = "conv"
    stem_width: int = 16
    stem_strides: int = 1
    widths: tuple[int, ...] = (32, 64)
    depths: tuple[int, ...] = (1, 1)
    attention_mix: float = 0.5
    kernel_size: int = 7
    num_heads: int = 4
    relative_bias: bool = False
    logit_scale: float | None = None
    attention_stem: str = "spatially_aware"
    form: str = "lean"
    unroll: bool = False
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, images):
        spatial = lambda kind, **kw: Spatial(
            kind,
            kernel_size=self.kernel_size,
            num_heads=self.num_heads,
            relative_bias=self.relative_bias,
            logit_scale=self.logit_scale,
            form=self.form,
            unroll=self.unroll,
            dtype=self.dtype,
            **kw,
        )
        if self.stem == "conv":
            x = spatial("conv", features=self.stem_width, strides=self.stem_strides, name="stem")(
                images
            )
        elif self.attention_stem == "spatially_aware":
            x = spatial(
                "attention_stem", features=self.stem_width, strides=self.stem_strides, name="stem"
            )(images)
        else:
            x = nn.Dense(self.stem_width, use_bias=False, name="stem_projection")(images)
            x = nn.relu(_norm(self.stem_width)(x))
            x = spatial(
                "attention", features=self.stem_width, strides=self.stem_strides, name="stem"
            )(x)
        for stage, (width, depth) in enumerate(zip(self.widths, self.depths)):
            for block in range(depth):
                strides = 2 if stage > 0 and block == 0 else 1
                x = Bottleneck(
                    width,
                    mix_width(width, self.blocks, self.attention_mix),
                    strides,
                    lambda **kw: spatial(self.blocks, **kw),
                    name=f"stage{stage}_block{block}",
                )(x)
        x = nn.relu(_norm(x.shape[-1])(x))
        return nn.Dense(self.num_classes, name="head")(jnp.mean(x, axis=(1, 2)))


class ViT(nn.Module):
    """Vision Transformer: `patch_size` patches, `depth` pre-norm blocks, mean pooling."""

    num_classes: int
    patch_size: int = 4
    width: int = 64
    depth: int = 2
    num_heads: int = 4
    mlp_dim: int = 128
    dtype: jnp.dtype = jnp.float32
    attention: str = "scaled_dot"  # any registered kind
    attention_options: Any = ()  # (name, value) pairs of the kind's options
    implementation: str = "xla"  # attn.implementations
    num_kv_heads: int | None = None

    @nn.compact
    def __call__(self, images):
        p = self.patch_size
        x = nn.Conv(self.width, (p, p), strides=p, padding="VALID", name="patches")(images)
        batch, rows, cols, _ = x.shape
        x = x.reshape(batch, rows * cols, self.width)  # [batch, patches, width], row-major
        position = self.param(
            "position", nn.initializers.normal(0.02), (1, rows * cols, self.width)
        )
        x = x + position
        for layer in range(self.depth):
            y = nn.LayerNorm(name=f"block{layer}_norm1")(x)
            y, weights = attn.MultiHeadAttention(
                num_heads=self.num_heads,
                kind=self.attention,
                options=dict(self.attention_options),
                implementation=self.implementation,
                num_kv_heads=self.num_kv_heads,
                dtype=self.dtype,
                name=f"block{layer}_attention",
            )(y)
            if weights is not None:  # forms that never make the weights leave no picture
                self.sow("intermediates", "global_attention", weights)  # [batch, heads, N, N]
            x = x + y
            y = nn.LayerNorm(name=f"block{layer}_norm2")(x)
            y = nn.Dense(self.mlp_dim, dtype=self.dtype, name=f"block{layer}_mlp1")(y)
            y = nn.Dense(self.width, dtype=self.dtype, name=f"block{layer}_mlp2")(nn.gelu(y))
            x = x + y
        x = nn.LayerNorm(name="final_norm")(x)
        return nn.Dense(self.num_classes, name="head")(jnp.mean(x, axis=1))


def build(model_config, num_classes: int, *, unroll: bool = False, dtype=jnp.float32) -> nn.Module:
    """The classifier `model_config.variant` names, sized by `model_config`.

    unroll: unroll the local attention loops (same function), for FLOP counts.
    dtype: the compute dtype (train.compute_dtype); parameters stay float32.
    """
    variant = model_config.variant
    if variant not in VARIANTS:
        raise ValueError(f"unknown model variant {variant!r}; valid: {', '.join(VARIANTS)}")
    if model_config.attention_stem not in ATTENTION_STEMS:
        raise ValueError(
            f"unknown model.attention_stem {model_config.attention_stem!r}; valid: "
            f"{', '.join(ATTENTION_STEMS)}"
        )
    if variant == "vit":
        return ViT(
            num_classes=num_classes,
            patch_size=model_config.patch_size,
            width=model_config.vit_width,
            depth=model_config.vit_depth,
            num_heads=model_config.vit_heads,
            mlp_dim=model_config.vit_mlp_dim,
            attention=model_config.get("attention", "scaled_dot"),
            attention_options=tuple(
                sorted(
                    (k, v)
                    for k, v in dict(model_config.get("attention_options") or {}).items()
                    if v is not None
                )
            ),
            implementation=model_config.get("implementation", "xla"),
            num_kv_heads=model_config.get("num_kv_heads") or None,
            dtype=dtype,
        )
    return ResNet(
        num_classes=num_classes,
        stem="attention" if variant == "full_attention" else "conv",
        blocks="conv" if variant == "conv" else "attention",
        stem_width=model_config.stem_width,
        stem_strides=model_config.stem_strides,
        widths=tuple(model_config.widths),
        depths=tuple(model_config.depths),
        attention_mix=model_config.attention_mix,
        kernel_size=model_config.kernel_size,
        num_heads=model_config.num_heads,
        relative_bias=model_config.relative_bias,
        logit_scale=model_config.logit_scale or None,
        attention_stem=model_config.attention_stem,
        form=model_config.attention_form,
        unroll=unroll,
        dtype=dtype,
    )


def attention_widths(model_config) -> dict[str, int]:
    """Where the variant attends: a name for each attention layer's width -> that width.

    For checking heads against widths before anything is built.
    """
    variant = model_config.variant
    if variant == "vit":
        return {"model.vit_width": model_config.vit_width}
    widths = {}
    if variant == "full_attention":
        widths["model.stem_width"] = model_config.stem_width
    if variant in ("conv_stem_attention", "full_attention"):
        for i, width in enumerate(model_config.widths):
            mix = mix_width(width, "attention", model_config.attention_mix)
            widths[f"model.widths[{i}] x model.attention_mix"] = mix
    return widths


def count_attention_layers(model_config) -> int:
    """How many attention layers the variant has (what `attention_maps` returns per image)."""
    variant, blocks = model_config.variant, sum(model_config.depths)
    return {
        "conv": 0,
        "conv_stem_attention": blocks,
        "full_attention": 1 + blocks,  # the stem attends too
        "vit": model_config.vit_depth,
    }[variant]


def count_parameters(params) -> int:
    return int(sum(np.size(x) for x in jax.tree.leaves(params)))


def flops_per_image(model: nn.Module, params, image_shape) -> float:
    """Forward FLOPs of one image, from XLA's cost analysis of the compiled model.

    Build the model with `unroll=True`: the analysis counts a loop body once.
    """
    images = jnp.zeros((1, *image_shape), jnp.float32)
    compiled = jax.jit(model.apply).lower(params, images).compile()
    analysis = compiled.cost_analysis()
    if isinstance(analysis, (list, tuple)):  # older jax: one dict per computation
        analysis = analysis[0]
    return float(analysis.get("flops", float("nan")))


@dataclasses.dataclass(frozen=True)
class AttentionMap:
    """One attention layer's weights on one image.

    kind "local": weights `[heads, H, W, k * k]` over each position's window
    on a `grid` (H, W) feature map. kind "global": weights `[heads, N, N]` over
    the `grid` (rows, cols) of patches, N = rows * cols.
    """

    name: str
    kind: str
    weights: np.ndarray
    grid: tuple[int, int]


@functools.lru_cache(maxsize=8)
def _apply_with_intermediates(model: nn.Module):
    # Modules hash by their fields: one compilation per model, not per call.
    return jax.jit(functools.partial(model.apply, mutable=["intermediates"]))


def _call_order(name: str):
    """Sort key of a layer name in the order the models call them.

    Pytrees come back with sorted keys, which would put "stem" after "stage0"
    and "block10" before "block2".
    """
    pieces = [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name)]
    return (not name.startswith("stem"), pieces)


def attention_maps(model: nn.Module, params, images) -> list[list[AttentionMap]]:
    """The attention weights of every attention layer, per image, in layer order.

    images `[batch, H, W, C]` -> `batch` lists of AttentionMap (empty lists
    for the convolutional model).
    """
    _, state = _apply_with_intermediates(model)(params, images)
    layers = []
    for path, weights in jax.tree_util.tree_flatten_with_path(state.get("intermediates", {}))[0]:
        name = "/".join(str(getattr(k, "key", k)) for k in path[:-1])  # the last is sow's index
        weights = np.asarray(weights, np.float32)
        if weights.ndim == 5:  # [batch, heads, H, W, k * k]
            layers.append((name, "local", weights, weights.shape[2:4]))
        else:  # [batch, heads, N, N] over the patch grid
            rows = images.shape[1] // model.patch_size
            layers.append((name, "global", weights, (rows, weights.shape[-1] // rows)))
    layers.sort(key=lambda layer: _call_order(layer[0]))
    return [
        [AttentionMap(name, kind, w[b], tuple(grid)) for name, kind, w, grid in layers]
        for b in range(images.shape[0])
    ]


__all__ = [
    "ATTENTION_STEMS",
    "VARIANTS",
    "AttentionMap",
    "ResNet",
    "ViT",
    "attention_maps",
    "attention_widths",
    "count_attention_layers",
    "build",
    "count_parameters",
    "flops_per_image",
    "mix_width",
]
