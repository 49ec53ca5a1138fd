"""Prediction over files and folders, what ``omniseg predict`` calls: class masks (palette PNGs), instances
(16-bit id PNGs + COCO results JSON), panoptic segments (COCO panoptic PNGs + JSON) or NIfTI label volumes,
each with overlays."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from omniseg.errors import ConfigError
from omniseg.inference.inputs import collect_images, collect_volumes
from omniseg.inference.predictor import Predictor, to_image_tensor
from omniseg.inference.writers import panoptic_json, write_instances, write_panoptic, write_prediction
from omniseg.metrics import coco_results
from omniseg.models.panoptic import panoptic_merge

Progress = Callable[[int, int], None]  # (files done, files in all)


@dataclass
class PredictionSummary:
    """What :func:`predict_images` wrote: ``kind`` is "semantic", "instances", "panoptic" or "volumes"."""

    out: Path
    kind: str
    files: int
    instances: int = 0  # instances written (kind "instances")
    index: Path | None = None  # coco_results.json or panoptic.json


def predict_images(
    run: str | Path | Predictor, inputs: Sequence[str | Path], out: str | Path, *, device: str | None = None,
    score_threshold: float = 0.5, mask_threshold: float = 0.5, overlap_threshold: float | None = None,
    stuff_min_area: int | None = None, instances: bool = False, split_touching: bool = False,
    semantic: str | Path | Predictor | None = None, progress: Progress | None = None,
) -> PredictionSummary:
    """Predict every image (or volume) of ``inputs`` (files and folders) with the model of ``run`` and write
    the results into ``out``.

    - semantic runs: ``<stem>.png`` (class ids, palette PNG) and ``<stem>_overlay.png``; with ``instances``
      their thing classes' connected regions as instances (``split_touching``: split by a watershed);
    - instance runs: ``<stem>_instances.png`` (16-bit ids, best first), overlays, ``coco_results.json`` (RLE
      masks) and ``images.json`` (the image ids); with ``semantic`` (a semantic run of the same classes) the
      instances are merged with its masks into panoptic output instead;
    - panoptic runs: ``<stem>_panoptic.png`` (COCO panoptic ids), overlays and ``panoptic.json``;
    - volumetric runs: ``<case>.nii.gz`` labels on the input's grid and a middle-slice overlay.

    ``score_threshold``, ``mask_threshold``, ``overlap_threshold`` and ``stuff_min_area`` are the instance and
    panoptic cuts (``None``: the model's own). ``progress(done, total)`` is called after each file.

    Example:
        >>> predict_images("runs/demo", ["photos/"], "preds/")  # doctest: +SKIP
        PredictionSummary(out=PosixPath('preds'), kind='semantic', files=12, instances=0, index=None)
    """
    predictor = run if isinstance(run, Predictor) else Predictor(run, device=device)
    if semantic is not None and predictor.task != "instance":
        raise ConfigError(f"a semantic partner pairs a semantic run with an instance run, but {run} is a {predictor.task} run")
    if instances and (predictor.task != "semantic" or predictor.volumetric):
        raise ConfigError(f"instances from class masks need a 2D semantic run, but {run} is a "
                          f"{'volumetric' if predictor.volumetric else predictor.task} run")
    out = Path(out)
    report = progress or (lambda done, total: None)
    if predictor.volumetric:
        return _predict_volumes(predictor, inputs, out, report)
    if predictor.task in ("instance", "panoptic") or instances:
        merge = {"score_threshold": score_threshold}
        merge |= {"overlap_threshold": overlap_threshold} if overlap_threshold is not None else {}
        merge |= {"stuff_min_area": stuff_min_area} if stuff_min_area is not None else {}
        partner = _semantic_partner(predictor, semantic, device) if semantic is not None else None
        if predictor.task == "panoptic" or partner is not None:
            return _predict_panoptic(predictor, partner, inputs, out, merge, mask_threshold, report)
        return _predict_instances(predictor, inputs, out, score_threshold, mask_threshold, split_touching, report)
    images = collect_images(inputs)
    for done, path in enumerate(images, 1):
        image = to_image_tensor(path)
        write_prediction(out, path.stem, image.permute(1, 2, 0).numpy(), predictor.predict(image), predictor.info)
        report(done, len(images))
    return PredictionSummary(out, "semantic", len(images))


def _image_entry(image_id: int, path: Path, pixels: np.ndarray) -> dict:
    return {"id": image_id, "file_name": path.name, "height": pixels.shape[0], "width": pixels.shape[1]}


def _predict_instances(predictor: Predictor, inputs, out: Path, score_threshold: float, mask_threshold: float,
                       split_touching: bool, report: Progress) -> PredictionSummary:
    images = collect_images(inputs)
    entries, results = [], []
    for image_id, path in enumerate(images, 1):
        image = to_image_tensor(path)
        pixels = image.permute(1, 2, 0).numpy()
        found = predictor.predict_instances(image, score_threshold=score_threshold, mask_threshold=mask_threshold,
                                            split_touching=split_touching)
        write_instances(out, path.stem, pixels, found, predictor.info)
        results += coco_results(image_id, found)
        entries.append(_image_entry(image_id, path, pixels))
        report(image_id, len(images))
    out.mkdir(parents=True, exist_ok=True)
    (out / "coco_results.json").write_text(json.dumps(results))
    (out / "images.json").write_text(json.dumps(entries, indent=1))
    return PredictionSummary(out, "instances", len(images), instances=len(results), index=out / "coco_results.json")


def _predict_panoptic(predictor: Predictor, partner: Predictor | None, inputs, out: Path, merge: dict, mask_threshold: float,
                      report: Progress) -> PredictionSummary:
    """A panoptic model's own merge, or an instance model's instances merged with a semantic ``partner``'s masks."""
    images = collect_images(inputs)
    annotations = []
    for image_id, path in enumerate(images, 1):
        image = to_image_tensor(path)
        pixels = image.permute(1, 2, 0).numpy()
        if partner is None:
            ids, segments = predictor.predict_panoptic(image, mask_threshold=mask_threshold, **merge)
        else:
            found = predictor.predict_instances(image, score_threshold=0.0, mask_threshold=mask_threshold)
            ids, segments = panoptic_merge(partner.predict(image), found["masks"], found["labels"].tolist(),
                                           found["scores"].tolist(), things=predictor.info.things, **merge)
        write_panoptic(out, path.stem, pixels, ids, segments, predictor.info)
        annotations.append({"image_id": image_id, "file_name": f"{path.stem}_panoptic.png", "image": _image_entry(image_id, path, pixels),
                            "segments_info": [{k: s[k] for k in ("id", "category_id", "area", "score")} | {"iscrowd": 0}
                                              for s in segments]})
        report(image_id, len(images))
    out.mkdir(parents=True, exist_ok=True)
    (out / "panoptic.json").write_text(json.dumps(panoptic_json(annotations, predictor.info)))
    return PredictionSummary(out, "panoptic", len(images), index=out / "panoptic.json")


def _semantic_partner(predictor: Predictor, semantic: str | Path | Predictor, device: str | None) -> Predictor:
    """The semantic run merged with an instance run's instances, checked against its classes."""
    partner = semantic if isinstance(semantic, Predictor) else Predictor(semantic, device=device)
    if partner.task != "semantic" or partner.volumetric:
        raise ConfigError(f"--semantic {semantic} is not a 2D semantic run (it is {partner.task}); pass one trained with --task semantic")
    if partner.info.class_names != predictor.info.class_names:
        raise ConfigError(f"--semantic {semantic} predicts {partner.info.class_names}, the instance run {predictor.info.class_names}; "
                          "the merge needs the same classes")
    return partner


def _predict_volumes(predictor: Predictor, inputs, out: Path, report: Progress) -> PredictionSummary:
    """NIfTI in, NIfTI labels out (on the input's grid), plus a PNG overlay of the middle slice."""
    from omniseg.data.formats.nifti import NIFTI_SUFFIXES, case_id, read_nifti, write_nifti_labels
    from omniseg.viz.overlay import grey_to_rgb

    volumes = collect_volumes(inputs, NIFTI_SUFFIXES)
    out.mkdir(parents=True, exist_ok=True)
    for done, path in enumerate(volumes, 1):
        volume, affine = read_nifti(path)
        labels = predictor.predict_volume(volume)
        case = case_id(path)
        write_nifti_labels(out / f"{case}.nii.gz", labels, affine)
        middle = volume.shape[1] // 2
        write_prediction(out, f"{case}_middle_slice", grey_to_rgb(volume[0, middle]), labels[middle], predictor.info)
        report(done, len(volumes))
    return PredictionSummary(out, "volumes", len(volumes))
