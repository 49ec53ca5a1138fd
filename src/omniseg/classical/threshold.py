"""Histogram thresholding: Otsu's threshold (1979) and its multi-level form (Liao et al., 2001), via scikit-image."""

from __future__ import annotations

import numpy as np
from skimage.exposure import histogram
from skimage.filters import threshold_multiotsu, threshold_otsu

from omniseg.classical.images import grey


def _histogram(values: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(counts, bin centres, bin index of each pixel)`` of a grey image (scikit-image's binning)."""
    counts, centres = histogram(values, nbins=bins)
    edges = (centres[1:] + centres[:-1]) / 2
    return counts, centres, np.searchsorted(edges, values, side="left")


def otsu_segmentation(image: np.ndarray, *, bins: int = 256) -> tuple[np.ndarray, float]:
    """``(labels [H, W] int64, threshold)``: 0 for the pixels in the histogram bins up to Otsu's threshold bin,
    1 above (the threshold returned is that bin's upper edge).

    Example:
        >>> image = np.array([[10, 12, 200], [11, 198, 202]])
        >>> labels, t = otsu_segmentation(image)
        >>> labels.tolist()
        [[0, 0, 1], [0, 1, 1]]
    """
    values = grey(image)
    if values.min() == values.max():
        return np.zeros(values.shape, np.int64), float(values.min())
    counts, centres, bin_of = _histogram(values, bins)
    index = int(np.searchsorted(centres, threshold_otsu(hist=(counts, centres))))
    return (bin_of > index).astype(np.int64), _upper_edge(centres, index)


def _upper_edge(centres: np.ndarray, index: int) -> float:
    return float((centres[index] + centres[index + 1]) / 2) if index + 1 < len(centres) else float(centres[index])


def multi_otsu_segmentation(image: np.ndarray, classes: int = 3, *, bins: int = 256) -> tuple[np.ndarray, list[float]]:
    """``(labels [H, W] int64 in 0..classes-1 by increasing brightness, thresholds)``: the ``classes - 1``
    thresholds that maximise the between-class variance of the grey histogram (each the upper edge of its bin)."""
    if classes < 2:
        raise ValueError(f"multi-level Otsu needs at least 2 classes, got {classes}")
    values = grey(image)
    distinct = np.unique(values).size
    if distinct < classes:
        raise ValueError(f"the image has {distinct} grey levels, too few for {classes} classes; ask for at most {distinct}")
    counts, centres, bin_of = _histogram(values, bins)
    indices = np.searchsorted(centres, threshold_multiotsu(classes=classes, hist=(counts, centres)))
    labels = np.searchsorted(indices, bin_of, side="left").astype(np.int64)
    return labels, [_upper_edge(centres, int(i)) for i in indices]
