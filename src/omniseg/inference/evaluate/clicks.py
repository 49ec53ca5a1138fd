"""Promptable models measured in clicks: every object of an instance dataset clicked by the simulated person of
:mod:`omniseg.metrics.clicks`, with Segment Anything's interactive protocol (the first click asks for three
proposals and keeps the one the model scores best; later clicks ask for one mask, with the last mask's low-res
logits as the mask input)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from omniseg.errors import DataError
from omniseg.metrics.clicks import Click, click_metrics, mean_curve, simulate_clicks


def interactive_session(predictor) -> Callable[[list[Click]], np.ndarray]:
    """``predict(clicks) -> mask`` for one object on the image set on ``predictor`` (a
    :class:`~omniseg.inference.promptable.prompt_predictor.PromptPredictor`, or a weight-free engine)."""
    previous: list[np.ndarray | None] = [None]

    def predict(clicks: list[Click]) -> np.ndarray:
        first = len(clicks) == 1
        result = predictor.predict(points=[[c.x, c.y] for c in clicks], labels=[int(c.positive) for c in clicks],
                                   mask_input=None if first else previous[0], multimask=first)
        best = int(np.nanargmax(result.scores)) if first and np.isfinite(result.scores).any() else 0
        previous[0] = result.low_res_logits[best] if result.low_res_logits is not None else None
        return result.masks[best]

    return predict


def object_curves(predictor, image, masks, *, max_clicks: int = 20, at: Sequence[int] = (1, 3, 5),
                  thresholds: Sequence[float] = (0.85, 0.9)) -> list[list[float]]:
    """The IoU after each click of every object ``masks`` ``[N, H, W]`` of ``image``: each clicked until its IoU
    reaches the highest threshold (and at least ``max(at)`` times), at most ``max_clicks``."""
    predictor.set_image(image)
    curves = []
    for mask in np.asarray(masks, bool):
        if mask.any():
            ious, _ = simulate_clicks(interactive_session(predictor), mask, max_clicks=max_clicks, stop_at=max(thresholds),
                                      min_clicks=max(at))
            curves.append(ious)
    return curves


def evaluate_clicks(predictor, dataset: torch.utils.data.Dataset, *, max_clicks: int = 20, at: Sequence[int] = (1, 3, 5),
                    thresholds: Sequence[float] = (0.85, 0.9), progress: Callable[[int, int], None] | None = None) -> dict:
    """The click table (:func:`~omniseg.metrics.clicks.click_metrics`) of ``predictor`` over every object of an
    instance ``dataset`` (samples with ``instances``; :func:`object_curves`), with ``miou_by_clicks``, the mean IoU
    after 1, 2, ... ``max_clicks`` clicks (the curve the literature plots)."""
    curves = []
    for index in range(len(dataset)):
        sample = dataset[index]
        instances = sample.get("instances")
        if instances is None:
            raise DataError(f"sample {sample['meta'].get('id')!r} has no instances; clicks are measured on instance data")
        curves += object_curves(predictor, sample["image"], instances["masks"], max_clicks=max_clicks, at=at, thresholds=thresholds)
        if progress is not None:
            progress(index + 1, len(dataset))
    return {"task": "promptable", **click_metrics(curves, at=at, thresholds=thresholds, max_clicks=max_clicks),
            "miou_by_clicks": mean_curve(curves, max_clicks=max_clicks)}
