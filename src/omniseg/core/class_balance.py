"""Class weights from class frequencies (a dataset statistic that losses use)."""

from __future__ import annotations

import torch


def median_frequency_weights(pixels: torch.Tensor, image_pixels: torch.Tensor) -> torch.Tensor:
    """Class weights by median frequency balancing (Eigen & Fergus, 2015).

    ``freq_c = pixels_c / image_pixels_c`` (pixels of class c over the pixels of the images where c
    appears); ``weight_c = median(freq) / freq_c``. Classes never seen get weight 0.

    Example:
        >>> median_frequency_weights(torch.tensor([30, 10, 10]), torch.tensor([40, 40, 20])).tolist()
        [0.6666666865348816, 2.0, 1.0]
    """
    pixels = torch.as_tensor(pixels, dtype=torch.float64)
    image_pixels = torch.as_tensor(image_pixels, dtype=torch.float64)
    seen = pixels > 0
    freq = torch.where(seen, pixels / image_pixels.clamp_min(1), torch.ones_like(pixels))
    median = freq[seen].median() if seen.any() else torch.tensor(1.0, dtype=torch.float64)
    return torch.where(seen, median / freq, torch.zeros_like(freq)).float()
