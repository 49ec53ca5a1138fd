"""GrabCut and the random walker from marks on hand-built arrays: exact labels, inputs left unmodified."""

import numpy as np
import pytest

from omniseg.classical import grabcut_segmentation, random_walker_segmentation

from .conftest import noisy_step, two_flat_regions

BOARD = np.kron(np.indices((3, 4)).sum(0) % 2, np.ones((4, 4), int)).astype(np.uint8) * 200
SQUARES = np.kron(np.arange(12).reshape(3, 4), np.ones((4, 4), int))


def _marks_in_each_square() -> np.ndarray:
    marks = np.zeros(BOARD.shape, np.int64)
    marks[1::4, 1::4] = np.arange(1, 13).reshape(3, 4)  # one seed per square, labels 1..12
    return marks


def _edge_columns(shape: tuple[int, int]) -> np.ndarray:
    marks = np.zeros(shape, np.int64)
    marks[:, 0], marks[:, -1] = 1, 2
    return marks


def test_grabcut_from_a_box_or_scribbles():
    image, truth = two_flat_regions()
    assert np.array_equal(grabcut_segmentation(image, box=(9, 0, 16, 12)), truth)
    scribbles = np.zeros((12, 16), np.int64)
    scribbles[6, 2], scribbles[6, 14] = 1, 2
    assert np.array_equal(grabcut_segmentation(image, scribbles=scribbles), truth)
    noisy, step = noisy_step(20.0)
    assert np.array_equal(grabcut_segmentation(noisy, scribbles=_edge_columns(noisy.shape)), step)
    board_marks = np.where(_marks_in_each_square() > 0, np.where(BOARD > 0, 2, 1), 0)
    assert np.array_equal(grabcut_segmentation(BOARD, scribbles=board_marks), BOARD // 200)


def test_grabcut_refuses_marks_it_cannot_start_from():
    image, _ = two_flat_regions()
    with pytest.raises(ValueError, match="needs a box"):
        grabcut_segmentation(image)
    with pytest.raises(ValueError, match="not inside"):
        grabcut_segmentation(image, box=(5, 5, 40, 8))
    with pytest.raises(ValueError, match="both background and foreground"):
        grabcut_segmentation(image, box=(0, 0, 16, 12))
    with pytest.raises(ValueError, match="1 \\(background\\) or 2"):
        grabcut_segmentation(image, scribbles=np.full((12, 16), 3))
    with pytest.raises(ValueError, match="image's grid"):
        grabcut_segmentation(image, scribbles=np.ones((3, 3), int))


def test_random_walker_from_seeds():
    image, truth = two_flat_regions()
    seeds = np.zeros((12, 16), np.int64)
    seeds[6, 2], seeds[6, 14] = 1, 2
    assert np.array_equal(random_walker_segmentation(image, seeds), truth)
    noisy, step = noisy_step(20.0)
    assert np.array_equal(random_walker_segmentation(noisy.round().astype(np.uint8), _edge_columns(noisy.shape)), step)
    assert np.array_equal(random_walker_segmentation(BOARD, _marks_in_each_square()), SQUARES)
    for solver in ("direct", "cg"):  # the direct and the iterative solver agree
        assert np.array_equal(random_walker_segmentation(image, seeds, solver=solver), truth)
    with pytest.raises(ValueError, match="solver must be"):
        random_walker_segmentation(image, seeds, solver="amg")
    with pytest.raises(ValueError, match="at least two labels"):
        random_walker_segmentation(image, (seeds == 1).astype(int))
    with pytest.raises(ValueError, match=r"\[2\] mark no pixel"):
        random_walker_segmentation(image, np.where(seeds == 2, 3, seeds))
    with pytest.raises(ValueError, match="negative"):
        random_walker_segmentation(image, -seeds)


def test_interactive_methods_leave_image_and_marks_alone_and_repeat():
    image, _ = two_flat_regions()
    noisy = noisy_step(20.0)[0].round().astype(np.uint8)
    marks = _edge_columns(noisy.shape)
    before = image.copy(), noisy.copy(), marks.copy()
    assert np.array_equal(grabcut_segmentation(noisy, scribbles=marks, seed=2), grabcut_segmentation(noisy, scribbles=marks, seed=2))
    random_walker_segmentation(noisy, marks)
    grabcut_segmentation(image, box=(9, 0, 16, 12))
    assert all(np.array_equal(a, b) for a, b in zip((image, noisy, marks), before))
