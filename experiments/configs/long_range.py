"""Long-range comparison of attention mechanisms: ListOps, Pathfinder, pixels, recall; offline.

    python launch.py --config=experiments/configs/long_range.py:listops,cpu --workdir=runs/listops
    python launch.py --config=experiments/configs/long_range.py:mqar,cpu --workdir=runs/mqar \\
        --config.model.attention=linear
    python launch.py --config=experiments/configs/long_range.py --sweep=quick \\
        --workdir=runs/long_range_quick --parallel=1
    python launch.py --report=runs/long_range_quick
    python launch.py --config=experiments/configs/long_range.py --sweep=all \\
        --workdir=runs/long_range --parallel=1     # every mechanism on every task

Tasks (`data.task`), generated from `data.seed`, nothing downloaded:

- `listops`: ListOps expressions (Nangia & Bowman 2018) as Long Range Arena
  uses them: MAX, MIN, MED, SM over digits, nested up to `max_depth`, 10
  classes (experiments/long_range/listops.py). An encoder classifier.
- `mqar`: multi-query associative recall (Arora et al. 2023): key-value
  pairs, then the keys again, each to be answered with its value
  (experiments/long_range/mqar.py). A causal decoder; accuracy at the queries.
- `pathfinder`: Pathfinder images (Linsley et al. 2018) as LRA uses them: are
  the two markers on one dashed path? (experiments/long_range/pathfinder.py),
  read as `size * size` pixels; `data.pathfinder` sets the size (16, LRA's
  32, 64, Path-X's 128) and the difficulty (segments, distractors, ...).
- `image`: real images as pixel sequences: Fashion-MNIST from Debian's
  `dataset-fashion-mnist` files (`data.image.path`), or CIFAR-10 made grey
  through TFDS by name (LRA's Image task; needs internet the first time);
  `data.image.downsample` averages blocks of pixels first.
- `text`: IMDB reviews as bytes (LRA's Text): TFDS `imdb_reviews` by name
  (needs internet the first time) or an aclImdb folder (`data.text.source`).
- `retrieval`: LRA's AAN citation pairs as bytes, from its TSV files in
  `data.retrieval.path`; a dual encoder (experiments/long_range/documents.py).

The config argument is TASK,SIZE: `tiny` (seconds; tests), `cpu` (minutes
per trial on 2 CPU cores: ListOps of 50-200 tokens, depth 6; MQAR of 4 pairs
in 32 tokens; Pathfinder at 16 x 16; Fashion-MNIST at 14 x 14), `lra` (LRA's
data: ListOps' 96k training expressions of 500-2,000 tokens, depth 10;
Pathfinder 32 x 32 with 160k / 20k / 20k images; greyscale CIFAR-10 at
32 x 32; a 4-layer d_model 512 encoder; an accelerator's job).

Expected on 2 CPU cores with softmax attention (test accuracy, measured
2026-12-03, listops and image again 2026-12-07): `listops,cpu` 24.6% in 6 to 7
min (chance 10%); `mqar,cpu` 99.9% in 75 s; `image,cpu` 74.3% in 6 min;
`pathfinder,cpu` 50.0% (chance: not learned in 1,500 steps) in 10 min, where the
convolutional reference (`--config.model.architecture=conv --config.model.num_layers=6`)
reaches 59.6%, and 99.8% with `--config.train.batch_size=64 --config.train.schedule=constant`;
with that budget, softmax attention over each pixel's 5 x 5 window
(`--config.model.architecture=local2d --config.model.num_layers=4
--config.model.kernel_size=5 --config.model.pooling=max`) still gives 50.0%
(2026-12-08).

Sweeps: one per task (`listops`, `mqar`, `pathfinder`, `image`, `text`,
`retrieval`) trains every registered mechanism that can run it (`cpu` size);
`all` every mechanism on every task that runs offline (the generated ones and
`image`, which needs Debian's Fashion-MNIST files: without them its trials
fail with the fix and the others run); `quick` the generated tasks at the
`tiny` size; `conv_reference` the convolutional reference (`model.architecture=conv`,
6 layers of 3 x 3, no attention) on the two pixel tasks at the same budget
(2026-12-07: Pathfinder 59.6%, Fashion-MNIST pixels 83.3% test, 4 min each);
`mqar_pairs`
softmax against linear attention and Performer as the pairs grow (2, 4, 8 in
32 tokens) at widths 32 and 64, each at learning rates 1e-3 and 3e-3 (Zoology's
comparison; the report tabulates and plots recall by pairs and width, each
point at the rate with the better validation accuracy). Softmax runs there
with rotary positions: with ALiBi it did not learn 8 pairs at width 32 (36.8%),
with sinusoidal positions alone not at width 64 (34% after 10,000 steps);
linear attention and Performer take no bias or rotation, so they keep
sinusoidal positions, and Performer its stabiliser (`epsilon=1e-6`; without it
a causal run diverged). Measured 2026-12-08 (test accuracy, 2, 4, 8 pairs):
softmax 100/100/100% at widths 32 and 64; linear 100/100/83% at 32 and
100/100/100% at 64; Performer 100/53/34% and 100/52/34%.
"""

from __future__ import annotations

import ml_collections

import attn
from experiments.common import attention_config, sections
from experiments.images.sources import FASHION_MNIST_DIR

TASKS = ("listops", "mqar", "pathfinder", "image", "text", "retrieval")
SIZES = ("cpu", "tiny", "lra")
TASK_NEEDS = {
    "listops": ("padding",),
    "mqar": ("causal", "padding"),
    "pathfinder": ("padding",),
    "image": ("padding",),
    "text": ("padding",),
    "retrieval": ("padding",),
}
GENERATED = ("listops", "mqar", "pathfinder")
OFFLINE = GENERATED + ("image",)  # text and retrieval need files or TFDS's download


def get_config(arg: str = "listops,cpu") -> ml_collections.ConfigDict:
    """`arg` is "TASK,SIZE" (TASK in TASKS, SIZE in SIZES), or a SIZE for ListOps."""
    task, _, size = arg.rpartition(",")
    task = task or "listops"
    if task not in TASKS or size not in SIZES:
        raise ValueError(
            f"unknown config {arg!r}; valid: TASK,SIZE with TASK in {', '.join(TASKS)} and "
            f"SIZE in {', '.join(SIZES)}"
        )
    config = ml_collections.ConfigDict()
    config.experiment = "long_range"
    config.preset = size
    config.seed = 0

    config.data = ml_collections.ConfigDict(
        dict(
            task=task,  # listops | mqar | pathfinder | image | text | retrieval
            seed=0,  # splits are drawn from seed, seed + 1, seed + 2
            train_size=20000,
            validation_size=500,
            test_size=500,
            # generated splits are drawn once and kept here ("" = draw at every launch)
            cache_dir="data/long_range",
            listops=dict(min_length=50, max_length=200, max_depth=6, max_args=5),
            # train_min_pairs: 0, or each training sequence's pair count drawn from
            # [train_min_pairs, num_pairs] (validation and test hold num_pairs)
            mqar=dict(vocab_size=32, num_pairs=4, length=32, train_min_pairs=0),
            # 16 x 16 on 2 cores; LRA's 32 x 32 is the lra size (see pathfinder.Settings).
            pathfinder=dict(
                size=16, segments=5, segment_length=1.5, max_turn=30.0, distractors=1, dash=2, gap=1
            ),
            image=dict(
                dataset="fashion_mnist",  # fashion_mnist (offline) | cifar10 (TFDS)
                path=FASHION_MNIST_DIR,  # fashion_mnist: the folder of the idx files
                tfds_data_dir="",  # cifar10: where TFDS keeps it ("" = its default)
                downsample=2,  # 28 x 28 -> 14 x 14 on 2 cores; 1 keeps every pixel
            ),
            # IMDB as bytes: "tfds" (imdb_reviews by name; needs internet once) or an aclImdb folder
            text=dict(source="tfds", tfds_data_dir="", max_length=512),
            # AAN pairs: the folder of LRA's new_aan_pairs.{train,eval,test}.tsv
            retrieval=dict(path="", max_length=512),
        )
    )
    config.model = ml_collections.ConfigDict(
        dict(
            # "conv": the convolutional reference for the pixel tasks (pathfinder, image;
            # experiments/models/pixel_conv.py), reading d_model, num_layers, dropout_rate;
            # "local2d": softmax attention over each pixel's kernel_size x kernel_size
            # window (pixel_local_attention.py), reading those and num_heads, d_ff, pooling
            architecture="transformer",
            d_model=64,
            num_heads=4,
            num_layers=2,
            d_ff=128,
            dropout_rate=0.1,
            attention_dropout_rate=0.0,
            pre_layer_norm=True,
            positions="sinusoidal",  # also learned, relative, rope, alibi, t5
            max_length=256,  # positions (sinusoidal, learned): at least the task's length
            max_relative_distance=16,
            pooling="mean",  # the classifiers' summary of a sequence: mean, first or max
            kernel_size=7,  # model.architecture="local2d": the window's side (odd)
        )
    )
    config.model.update(attention_config.fields("scaled_dot"))

    config.train = sections.train_section(
        steps=1500, batch_size=32, learning_rate=1e-3, warmup_steps=100, log_every_steps=50
    )
    config.eval = ml_collections.ConfigDict(dict(every_steps=500, batch_size=100))
    config.checkpoint = sections.checkpoint_section(every_steps=500, keep=2)

    if task == "mqar":  # recall needs no dropout, a larger step and batch to form its heads
        config.model.dropout_rate = 0.0
        config.train.update(learning_rate=3e-3, batch_size=64, steps=2000)
    if task == "pathfinder":  # drawing takes about 6 ms an image at 16 x 16
        config.data.train_size = 10000
    if task == "image":
        config.data.test_size = 2000
    if task in ("text", "retrieval"):
        config.data.train_size = 5000
        config.model.max_length = 512
    if size == "tiny":
        config.data.update(train_size=64, validation_size=16, test_size=16, cache_dir="")
        config.data.listops.update(min_length=10, max_length=24, max_depth=3, max_args=3)
        config.data.mqar.update(vocab_size=16, num_pairs=2, length=12)
        config.data.pathfinder.update(segments=4, segment_length=2.0)
        config.data.text.max_length = config.data.retrieval.max_length = 64
        # max_length: the 16 x 16 pixels of the smallest Pathfinder
        config.model.update(d_model=16, num_heads=2, num_layers=1, d_ff=32, max_length=256)
        config.model.dropout_rate = 0.0
        config.train.update(
            steps=4, batch_size=8, learning_rate=1e-3, warmup_steps=1, log_every_steps=2
        )
        config.eval.update(every_steps=2, batch_size=16)
        config.checkpoint.every_steps = 2
    elif size == "lra":
        # LRA's ListOps (Tay et al. 2021, appendix): 96k / 2k / 2k expressions.
        config.data.update(train_size=96000, validation_size=2000, test_size=2000)
        config.data.listops.update(min_length=500, max_length=2000, max_depth=10, max_args=10)
        config.data.pathfinder.update(size=32, segments=10, segment_length=2.0, distractors=2)
        config.data.image.update(dataset="cifar10", downsample=1)
        # Text: 4k bytes a review; Retrieval: 4k bytes each side of a pair.
        config.data.text.max_length = config.data.retrieval.max_length = 4000
        if task in ("text", "retrieval"):
            config.model.max_length = 4096
        if task == "text":  # IMDB: 25k training reviews (1k held out), the 25k test reviews
            config.data.update(train_size=24000, validation_size=1000, test_size=25000)
        if task == "retrieval":  # AAN: every pair of LRA's own train / eval / test files
            config.data.update(train_size=10**9, validation_size=10**9, test_size=10**9)
        if task == "pathfinder":
            config.data.update(train_size=160000, validation_size=20000, test_size=20000)
        if task == "image":  # CIFAR-10: 45k training, 5k validation, the 10k test images
            config.data.update(train_size=45000, validation_size=5000, test_size=10000)
        config.model.update(d_model=512, num_heads=8, num_layers=4, d_ff=1024, max_length=2048)
        config.train.update(steps=5000, batch_size=32, learning_rate=5e-4, warmup_steps=1000)
        config.eval.every_steps = 1000
        config.checkpoint.every_steps = 1000
    return config


def _able(task: str) -> list[str]:
    return attn.available(*TASK_NEEDS[task])


def get_sweeps() -> dict[str, dict]:
    """Named sweeps (see experiments/common/sweeps.py for the format)."""
    # The tiny sizes of every task are set whichever task the config starts from.
    every = [
        {"data.task": task, "model.attention": kind} for task in GENERATED for kind in _able(task)
    ]
    return {
        # One per task: every mechanism that can run it, at the cpu size.
        **{
            task: {"config": f"{task},cpu", "grid": {"model.attention": _able(task)}}
            for task in TASKS
        },
        # Task by task, the shortest trials first (MQAR about a minute each on 2
        # cores, pixels and ListOps minutes, Pathfinder ten), additive attention
        # after all the others (its [q, k, features] terms take 5 to 10 times as
        # long), so that a run cut short, to be resumed later, covers the most.
        "all": {
            "trials": sorted(
                (
                    {"config": f"{task},cpu", "data.task": task, "model.attention": kind}
                    for task in sorted(
                        OFFLINE, key=("mqar", "image", "listops", "pathfinder").index
                    )
                    for kind in _able(task)
                ),
                key=lambda trial: trial["model.attention"] == "additive",
            )
        },
        "quick": {"config": "listops,tiny", "trials": every},
        # No attention: 6 convolutions of 3 x 3 over the pixel tasks' images, the same
        # budget (each trial minutes), to tell a mechanism at chance from a task without signal.
        "conv_reference": {
            "trials": [
                {"config": f"{task},cpu", "data.task": task} for task in ("pathfinder", "image")
            ],
            "grid": {"model.architecture": ["conv"], "model.num_layers": [6]},
        },
        # Zoology's comparison at 2-CPU scale, each point at the better of two learning
        # rates by validation accuracy (the report picks): 36 trials, about an hour on 2 cores.
        "mqar_pairs": {
            "config": "mqar,cpu",
            "trials": [
                {"model.attention": "scaled_dot", "model.positions": "rope"},
                {"model.attention": "linear"},
                {"model.attention": "performer", "model.attention_options.epsilon": 1e-6},
            ],
            "grid": {
                "model.d_model": [32, 64],
                "data.mqar.num_pairs": [2, 4, 8],
                "train.learning_rate": [1e-3, 3e-3],
            },
        },
    }
