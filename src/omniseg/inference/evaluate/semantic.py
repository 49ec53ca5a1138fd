"""Semantic evaluation: a model's confusion matrix over a dataset of normalised Samples."""

from __future__ import annotations

import torch
from torch import nn

from omniseg.core.labels import class_ids
from omniseg.data.transforms import PadCollate
from omniseg.errors import DataError
from omniseg.metrics import ConfusionMatrix


@torch.inference_mode()
def evaluate_model(
    model: nn.Module,
    dataset: torch.utils.data.Dataset,
    *,
    num_classes: int,
    ignore_index: int,
    batch_size: int = 4,
    num_workers: int = 0,
    device: str | torch.device = "cpu",
) -> ConfusionMatrix:
    """Confusion matrix of ``model`` over a dataset of already-normalised Samples with masks; pixels whose
    truth is ``ignore_index`` (the dataset's void value) are not counted."""
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, num_workers=num_workers, collate_fn=PadCollate(ignore_index=ignore_index)
    )
    matrix = ConfusionMatrix(num_classes, ignore_index=ignore_index)
    model = model.eval().to(device)
    for batch in loader:
        if "mask" not in batch:
            raise DataError("the split has images without masks; evaluation needs ground truth")
        pred = class_ids(model(batch["image"].to(device)), 1).cpu()
        matrix.update(pred, batch["mask"])
    return matrix
