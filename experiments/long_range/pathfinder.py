"""Pathfinder (Linsley et al. 2018), as Long Range Arena uses it (Tay et al. 2021).

A grey image holds two round markers and several dashed, curved paths; the
label says whether the two markers lie at the two ends of one path (1) or on
two different paths (0). Both classes draw the same number of paths, so
counting ink tells nothing; only following a path does. Read as a sequence of
`size * size` pixels (1,024 at LRA's 32 x 32; Path-X is 128 x 128), the two
markers can be hundreds of positions apart.

A path is `segments` straight steps of `segment_length` pixels whose direction
turns by at most `max_turn` degrees at each step; it is drawn in dashes of
`dash` pixels with gaps of `gap` (`gap=0`: solid). Different paths, and the
markers, keep a pixel of background between them, so with solid paths the
label is exactly whether the markers are 8-connected through ink (the tests
check this). `distractors` paths come on top of the two the markers sit on.

`generate(seed, count, ...)` is deterministic from `seed`, with the classes
balanced exactly (count // 2 of each, the extra one positive).
"""

from __future__ import annotations

import dataclasses

import numpy as np

SIZES = (16, 32, 64, 128)  # 16: the 2-core preset; 32: LRA; 64; 128: Path-X
MARKER_RADIUS = 1.5
_SAMPLES_PER_PIXEL = 4  # points drawn per pixel of path length
_ATTEMPTS = 100  # tries to place one path before the image is started again
_TURNS_PER_STEP = 16
_RESTARTS = 50


@dataclasses.dataclass(frozen=True)
class Settings:
    """The defaults are the 32 x 32 images of the `lra` size."""

    size: int = 32
    segments: int = 10
    segment_length: float = 2.0
    max_turn: float = 30.0  # degrees
    distractors: int = 2
    dash: int = 2
    gap: int = 1


def check_settings(settings: Settings) -> None:
    """One-line ValueError naming a setting the generator cannot draw."""
    s = settings
    if s.size not in SIZES:
        raise ValueError(f"pathfinder size={s.size!r}; valid: {', '.join(map(str, SIZES))}")
    if not isinstance(s.segments, int) or s.segments < 1:
        raise ValueError(f"pathfinder segments={s.segments!r}; valid: 1 or more")
    if not 1.0 <= s.segment_length <= s.size / 4:
        raise ValueError(
            f"pathfinder segment_length={s.segment_length!r}; valid: 1 to size / 4 = {s.size / 4}"
        )
    if not 0.0 <= s.max_turn <= 180.0:
        raise ValueError(f"pathfinder max_turn={s.max_turn!r}; valid: 0 to 180 degrees")
    if not isinstance(s.distractors, int) or s.distractors < 0:
        raise ValueError(f"pathfinder distractors={s.distractors!r}; valid: 0 or more")
    if not isinstance(s.dash, int) or s.dash < 1 or not isinstance(s.gap, int) or s.gap < 0:
        raise ValueError(
            f"pathfinder dash={s.dash!r}, gap={s.gap!r}; valid: dash 1 or more, gap 0 or more"
        )
    # Ink the paths need, against the room the image has (each path reserves a margin).
    ink = (2 + s.distractors) * (s.segments * s.segment_length + 2 * MARKER_RADIUS) * 3
    if ink > 0.6 * s.size * s.size:
        raise ValueError(
            f"pathfinder: {2 + s.distractors} paths of {s.segments} x {s.segment_length} pixels "
            f"do not fit a {s.size} x {s.size} image; fewer distractors, segments or a larger size"
        )


def _walk(rng, s: Settings, blocked: np.ndarray) -> np.ndarray | None:
    """The corner points `[segments + 1, 2]` (row, column) of a path inside the image
    that keeps off `blocked`, grown a step at a time: of `_TURNS_PER_STEP` turns
    drawn for a step, the first whose segment stays inside and off `blocked`."""
    low, high = MARKER_RADIUS + 0.5, s.size - 1 - MARKER_RADIUS - 0.5
    point = rng.uniform(low, high, 2)
    if blocked[tuple(np.rint(point).astype(int))]:
        return None
    # Set off roughly towards the middle: a path heading at a nearby edge rarely fits.
    to_middle = np.arctan2(*(s.size / 2 - point))
    angle = to_middle + rng.uniform(-np.pi / 2, np.pi / 2)
    fractions = np.arange(1, int(np.ceil(s.segment_length * _SAMPLES_PER_PIXEL)) + 1)
    fractions = fractions / fractions[-1]
    points = [point]
    for _ in range(s.segments):
        turned = angle + np.radians(rng.uniform(-s.max_turn, s.max_turn, _TURNS_PER_STEP))
        direction = np.stack([np.sin(turned), np.cos(turned)], -1)  # [turns, 2]
        # [turns, samples, 2]: points along each candidate segment
        along = point + s.segment_length * fractions[None, :, None] * direction[:, None]
        inside = ((along >= low) & (along <= high)).all((1, 2))
        cells = np.clip(np.rint(along).astype(int), 0, s.size - 1)
        free = inside & ~blocked[cells[..., 0], cells[..., 1]].any(1)
        if not free.any():
            return None
        choice = int(np.argmax(free))
        point, angle = along[choice, -1], turned[choice]
        points.append(point)
    return np.stack(points)


def _trace(corners: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Points along the path `[n, 2]` and the arc length at each."""
    points, arcs, travelled = [], [], 0.0
    for a, b in zip(corners[:-1], corners[1:]):
        length = float(np.linalg.norm(b - a))
        steps = max(int(np.ceil(length * _SAMPLES_PER_PIXEL)), 1)
        t = np.arange(steps) / steps
        points.append(a + t[:, None] * (b - a))
        arcs.append(travelled + t * length)
        travelled += length
    points.append(corners[-1:])
    arcs.append(np.array([travelled]))
    return np.concatenate(points), np.concatenate(arcs)


def _pixels(points: np.ndarray, size: int) -> np.ndarray:
    grid = np.zeros((size, size), bool)
    rows, cols = np.rint(points).astype(int).T
    grid[rows, cols] = True
    return grid


def _disc(center: np.ndarray, size: int) -> np.ndarray:
    rows, cols = np.mgrid[:size, :size]
    return (rows - center[0]) ** 2 + (cols - center[1]) ** 2 <= MARKER_RADIUS**2


def _dilate(grid: np.ndarray) -> np.ndarray:
    """Every pixel within one step (8-neighbourhood) of `grid`."""
    padded = np.pad(grid, 1)
    out = np.zeros_like(grid)
    for dr in (0, 1, 2):
        for dc in (0, 1, 2):
            out |= padded[dr : dr + grid.shape[0], dc : dc + grid.shape[1]]
    return out


def draw(rng, s: Settings, connected: bool) -> tuple[np.ndarray, np.ndarray]:
    """One image uint8 `[size, size]` (0 or 255) and its two marker centres `[2, 2]`."""
    for _ in range(_RESTARTS):
        taken = np.zeros((s.size, s.size), bool)  # ink so far, paths and markers
        image = np.zeros((s.size, s.size), bool)
        ends = []
        for path in range(2 + s.distractors):
            blocked = _dilate(taken)
            for _ in range(_ATTEMPTS):
                corners = _walk(rng, s, blocked)
                if corners is None:
                    continue
                points, arcs = _trace(corners)
                solid = _pixels(points, s.size)
                if path < 2:  # the marker paths reserve both ends' discs
                    solid |= _disc(corners[0], s.size) | _disc(corners[-1], s.size)
                if not (solid & blocked).any():
                    break
            else:
                break  # this path found no room: start the image again
            taken |= solid
            dashed = (arcs % (s.dash + s.gap)) < s.dash
            image |= _pixels(points[dashed], s.size)
            ends.append((corners[0], corners[-1]))
        else:
            markers = np.stack([ends[0][0], ends[0][1] if connected else ends[1][1]])
            for center in markers:
                image |= _disc(center, s.size)
            return image.astype(np.uint8) * 255, markers
    raise ValueError(
        f"pathfinder: could not place {2 + s.distractors} paths in a {s.size} x {s.size} image "
        f"after {_RESTARTS} tries; fewer distractors or segments"
    )


def generate(seed: int, count: int, settings: Settings) -> tuple[np.ndarray, np.ndarray]:
    """`count` images uint8 `[count, size, size]` and labels int32 `[count]` (1: connected)."""
    check_settings(settings)
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(count) % 2 == 0).astype(np.int32)
    images = np.zeros((count, settings.size, settings.size), np.uint8)
    for i, label in enumerate(labels):
        images[i] = draw(rng, settings, bool(label))[0]
    return images, labels
