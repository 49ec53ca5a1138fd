"""RoIAlign (He et al., 2017) as two matrix products, exactly torchvision's, with a backward that uses all cores.

RoIAlign averages bilinear samples on a regular grid in each output bin. Bilinear interpolation and the grid
are both separable, so each RoI's output is ``Wy @ F @ Wx^T``: ``Wy`` (bins x height) and ``Wx`` (bins x
width) hold the averaged interpolation weights of one axis. Computed so, the forward and the backward are
matrix products (torchvision's CPU backward is a single-threaded scatter, about a third of a light Mask
R-CNN's training step). The weights follow torchvision's sampling to the letter (adaptive sampling count,
points beyond ``[-1, size]`` dropped, edge clamping, ``aligned``), so the results agree to float rounding.
GPUs, large maps, tracing and export go to torchvision's operator (``benchmarks/roi_align.py`` compares them).
"""

from __future__ import annotations

import torch
import torchvision
from torch import Tensor
from torchvision.ops import MultiScaleRoIAlign as _TorchvisionMultiScaleRoIAlign
from torchvision.ops import roi_align as _torchvision_roi_align
from torchvision.ops.poolers import _convert_to_roi_format, _filter_input, _setup_scales

# The products' intermediate (RoIs x bins x channels x width of one image) stays below this many elements
# (64 MB in float32); a larger one goes to torchvision's operator.
MAX_INTERMEDIATE = 16 * 1024 * 1024


def axis_weights(start: Tensor, length: Tensor, bins: int, size: int, sampling_ratio: int, aligned: bool) -> Tensor:
    """The ``[R, bins, size]`` weights that average RoIAlign's bilinear samples along one axis, for RoIs
    starting at ``start`` with extent ``length`` (feature-map units)."""
    if not aligned:
        length = length.clamp_min(1.0)
    bin_length = length / bins
    grid = torch.full_like(length, float(sampling_ratio)) if sampling_ratio > 0 else torch.ceil(length / bins)
    most = max(int(grid.max()) if len(grid) else 1, 1)
    sample = torch.arange(most, dtype=start.dtype, device=start.device)
    bin_index = torch.arange(bins, dtype=start.dtype, device=start.device)
    step = (bin_length / grid.clamp_min(1))[:, None, None]
    coord = start[:, None, None] + bin_index[None, :, None] * bin_length[:, None, None] + (sample + 0.5) * step  # [R, bins, most]
    weight = ((sample < grid[:, None, None]) & (coord >= -1.0) & (coord <= size)).to(start.dtype) / grid.clamp_min(1)[:, None, None]
    coord = coord.clamp_min(0)
    low = coord.floor().clamp_max(size - 1)
    coord = torch.where(low >= size - 1, low, coord)  # at the last row the sample sits on it
    frac = coord - low
    high = (low + 1).clamp_max(size - 1)
    weights = torch.zeros(len(start), bins, size, dtype=start.dtype, device=start.device)
    weights.scatter_add_(2, low.long(), (1 - frac) * weight)
    weights.scatter_add_(2, high.long(), frac * weight)
    return weights


def roi_align(features: Tensor, rois: Tensor, output_size: tuple[int, int], spatial_scale: float, sampling_ratio: int,
              aligned: bool = False) -> Tensor:
    """torchvision's ``roi_align`` for ``rois`` as ``[K, 5]`` (image index, x1, y1, x2, y2), computed as
    matrix products on the CPU where the intermediate is small; torchvision's operator otherwise (its GPU
    kernels are parallel already), and when tracing or compiling."""
    n, channels, height, width = features.shape
    bins_y, bins_x = output_size
    if features.device.type != "cpu" or not len(rois) or torchvision._is_tracing() or torch.compiler.is_compiling():
        return _torchvision_roi_align(features, rois, output_size, spatial_scale, sampling_ratio, aligned)
    image = rois[:, 0].long()
    per_image = torch.bincount(image, minlength=n)
    if int(per_image.max()) * bins_y * channels * width > MAX_INTERMEDIATE:
        return _torchvision_roi_align(features, rois, output_size, spatial_scale, sampling_ratio, aligned)
    offset = 0.5 if aligned else 0.0
    box = rois[:, 1:] * spatial_scale - offset
    wy = axis_weights(box[:, 1], box[:, 3] - box[:, 1], bins_y, height, sampling_ratio, aligned).to(features.dtype)
    wx = axis_weights(box[:, 0], box[:, 2] - box[:, 0], bins_x, width, sampling_ratio, aligned).to(features.dtype)
    order = torch.argsort(image, stable=True) if bool((image[1:] < image[:-1]).any()) else None
    if order is not None:
        wy, wx = wy[order], wx[order]
    rows = features.transpose(1, 2).reshape(n, height, channels * width)  # each image as [H, C*W]
    parts, first = [], 0
    for index, count in enumerate(per_image.tolist()):
        if count:
            pooled_y = (wy[first:first + count].reshape(count * bins_y, height) @ rows[index]).view(count, bins_y * channels, width)
            parts.append(torch.bmm(pooled_y, wx[first:first + count].transpose(1, 2)).view(count, bins_y, channels, bins_x))
            first += count
    out = (torch.cat(parts) if len(parts) > 1 else parts[0]).permute(0, 2, 1, 3)
    return out[torch.argsort(order)] if order is not None else out


class MultiScaleRoIAlign(_TorchvisionMultiScaleRoIAlign):
    """torchvision's multi-scale RoIAlign (each RoI pooled from its FPN level) on :func:`roi_align`."""

    def forward(self, x: dict[str, Tensor], boxes: list[Tensor], image_shapes: list[tuple[int, int]]) -> Tensor:
        if torchvision._is_tracing():
            return super().forward(x, boxes, image_shapes)
        features = _filter_input(x, self.featmap_names)
        if self.scales is None or self.map_levels is None:
            self.scales, self.map_levels = _setup_scales(features, image_shapes, self.canonical_scale, self.canonical_level)
        rois = _convert_to_roi_format(boxes)
        size = tuple(self.output_size)
        levels = self.map_levels(boxes)
        pooled, chosen = [], []
        for level, (level_features, scale) in enumerate(zip(features, self.scales)):
            chosen.append(torch.where(levels == level)[0])
            pooled.append(roi_align(level_features, rois[chosen[-1]], size, scale, self.sampling_ratio).to(features[0].dtype))
        return torch.cat(pooled)[torch.argsort(torch.cat(chosen))]
