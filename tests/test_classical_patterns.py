"""Every method of ``omniseg.classical.methods`` on the three hand-built patterns (two flat regions, a
checkerboard of 4x4 squares, a noisy step edge), with exact expected labels, and none modifying its input."""

import numpy as np
import pytest

from omniseg.classical.methods import METHODS, segment

from .conftest import noisy_step, two_flat_regions

BOARD = np.kron(np.indices((3, 4)).sum(0) % 2, np.ones((4, 4), int)).astype(np.uint8) * 200
SQUARES = np.kron(np.arange(12).reshape(3, 4), np.ones((4, 4), int))
COLOURS = BOARD // 200  # two labels: the methods that label colours, or join corner-touching squares (8-neighbours)
STEP, STEP_TRUTH = noisy_step(12.0)
STEP = STEP.round().astype(np.uint8)
FLAT, FLAT_TRUTH = two_flat_regions()


def _square_seeds() -> np.ndarray:
    seeds = np.zeros(BOARD.shape, np.int64)
    seeds[1::4, 1::4] = np.arange(1, 13).reshape(3, 4)
    return seeds


def _side_seeds(shape, left: int = 1, right: int = 2) -> np.ndarray:
    seeds = np.zeros(shape[:2], np.int64)
    seeds[:, 0], seeds[:, -1] = left, right
    return seeds


# method -> (parameters, marks) for: two flat regions, checkerboard, noisy step; and the board's expected labels
CASES = {
    "otsu": ({}, {}, {}, COLOURS),
    "multi-otsu": ({"classes": 2}, {"classes": 2}, {"classes": 2}, COLOURS),
    "kmeans": ({"k": 2}, {"k": 2, "connect": True}, {"k": 2}, SQUARES),
    "mean-shift": ({}, {"connect": True}, {"bandwidth": 0.2}, SQUARES),
    "gmm": ({"k": 2}, {"k": 2}, {"k": 2}, COLOURS),
    "watershed": ({}, {"smoothing": 0.0}, {"h": 0.3, "smoothing": 2.0}, SQUARES),
    "split-merge": ({"threshold": 10.0}, {"threshold": 10.0}, {"threshold": 100.0}, SQUARES),  # noise range ~75 < 100 < step
    "mrf-icm": ({"k": 2}, {"k": 2}, {"k": 2, "beta": 2.5}, COLOURS),
    "mrf-gibbs": ({"k": 2}, {"k": 2}, {"k": 2, "beta": 2.5}, COLOURS),
    "slic": ({"segments": 2}, {"segments": 12, "compactness": 1.0, "smoothing": 0.0}, {"segments": 2, "compactness": 0.1}, SQUARES),
    "slic0": ({"segments": 2, "smoothing": 0.0}, {"segments": 12, "compactness": 1.0, "smoothing": 0.0},
              {"segments": 2, "compactness": 1.0, "smoothing": 0.0}, SQUARES),
    "felzenszwalb": ({}, {"smoothing": 0.0, "min_size": 1}, {"scale": 300.0, "min_size": 50}, COLOURS),
    "rag-merge": ({}, {}, {"threshold": 0.2}, COLOURS),
    "ncut": ({}, {}, {"sigma": 0.1}, COLOURS),
    "grabcut": ({}, {}, {}, COLOURS),
    "random-walker": ({}, {}, {}, SQUARES),
}
MARKS = {  # (flat, board, step) seeds and boxes for the interactive methods
    "grabcut": [(None, (9, 0, 16, 12)), (np.where(_square_seeds() > 0, COLOURS + 1, 0), None), (_side_seeds(STEP.shape), None)],
    "random-walker": [(_side_seeds(FLAT.shape), None), (_square_seeds(), None), (_side_seeds(STEP.shape), None)],
}


def test_the_cases_cover_every_method():
    assert set(CASES) == set(METHODS)


@pytest.mark.parametrize("name", list(CASES))
def test_exact_labels_on_flat_regions_a_checkerboard_and_a_noisy_step(name):
    flat_parameters, board_parameters, step_parameters, board_truth = CASES[name]
    marks = MARKS.get(name, [(None, None)] * 3)
    images = [(FLAT, flat_parameters, FLAT_TRUTH), (BOARD, board_parameters, board_truth), (STEP, step_parameters, STEP_TRUTH)]
    for (image, parameters, truth), (seeds, box), pattern in zip(images, marks, ("flat", "board", "step")):
        before = image.copy()
        seeds_before = None if seeds is None else seeds.copy()
        labels = segment(image, name, parameters, seeds=seeds, box=box)
        assert labels.dtype == np.int64 and np.array_equal(labels, truth), (name, pattern)
        assert np.array_equal(image, before), (name, pattern)  # the input is not modified
        assert seeds is None or np.array_equal(seeds, seeds_before), (name, pattern)
