"""Pathfinder images: the label is whether the markers are joined by ink, and nothing else."""

import dataclasses

import numpy as np
import pytest
from scipy import ndimage

from experiments.long_range import pathfinder

SOLID = pathfinder.Settings(size=32, segments=8, segment_length=2.0, distractors=2, gap=0)
EIGHT_NEIGHBOURS = np.ones((3, 3), bool)


def joined(image, markers):
    """Whether the two marker centres lie in one 8-connected component of ink."""
    components, _ = ndimage.label(image > 0, structure=EIGHT_NEIGHBOURS)
    a, b = (components[tuple(np.rint(m).astype(int))] for m in markers)
    assert a and b  # both centres are ink
    return a == b


@pytest.mark.parametrize("connected", [True, False])
def test_with_solid_paths_the_label_is_exactly_connectivity(connected):
    rng = np.random.default_rng(0)
    for _ in range(25):
        image, markers = pathfinder.draw(rng, SOLID, connected)
        assert joined(image, markers) == connected
        # Every path, the two marker paths included, is its own component: no path touches
        # another, so the distractors are separate pieces of ink.
        _, pieces = ndimage.label(image > 0, structure=EIGHT_NEIGHBOURS)
        assert pieces == 2 + SOLID.distractors
        if not connected:
            assert np.linalg.norm(markers[0] - markers[1]) > 2 * pathfinder.MARKER_RADIUS


def test_dashes_are_gaps_in_the_same_paths():
    dashed = dataclasses.replace(SOLID, dash=2, gap=2)
    for seed in range(5):
        solid_image, solid_markers = pathfinder.draw(np.random.default_rng(seed), SOLID, True)
        image, markers = pathfinder.draw(np.random.default_rng(seed), dashed, True)
        np.testing.assert_array_equal(markers, solid_markers)  # the same paths are drawn
        assert not (image & ~solid_image).any()  # nothing outside them
        assert (image > 0).sum() < 0.9 * (solid_image > 0).sum()  # and gaps in them


def test_generate_is_deterministic_balanced_and_grey_levels():
    settings = pathfinder.Settings(size=16, segments=4, segment_length=2.0, distractors=1)
    images, labels = pathfinder.generate(3, 41, settings)
    assert images.shape == (41, 16, 16) and images.dtype == np.uint8
    assert set(np.unique(images)) == {0, 255}
    assert labels.dtype == np.int32 and labels.sum() == 21  # 20 of each class, the odd one 1
    again, again_labels = pathfinder.generate(3, 41, settings)
    np.testing.assert_array_equal(again, images)
    np.testing.assert_array_equal(again_labels, labels)
    other, other_labels = pathfinder.generate(4, 41, settings)
    assert not np.array_equal(other, images) and not np.array_equal(other_labels, labels)


def test_ink_does_not_tell_the_classes_apart():
    """Both classes draw the same number of paths: ink per image is about the same."""
    images, labels = pathfinder.generate(0, 200, SOLID)
    ink = (images > 0).sum((1, 2))
    positive, negative = ink[labels == 1].mean(), ink[labels == 0].mean()
    assert abs(positive - negative) < 0.05 * negative, (positive, negative)


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(size=20), "pathfinder size=20; valid: 16, 32, 64, 128"),
        (dict(segments=0), "pathfinder segments=0; valid: 1 or more"),
        (dict(segment_length=9.0), "segment_length=9.0; valid: 1 to size / 4 = 8.0"),
        (dict(max_turn=200.0), "max_turn=200.0; valid: 0 to 180"),
        (dict(distractors=-1), "distractors=-1; valid: 0 or more"),
        (dict(dash=0), "dash=0, gap=1; valid"),
        (dict(size=16, distractors=12), "14 paths of 10 x 2.0 pixels do not fit a 16 x 16"),
    ],
)
def test_impossible_settings_are_one_line(change, message):
    settings = dataclasses.replace(pathfinder.Settings(), **change)
    with pytest.raises(ValueError, match=message) as error:
        pathfinder.generate(0, 2, settings)
    assert "\n" not in str(error.value)
