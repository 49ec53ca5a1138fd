"""Prediction over files and folders, what ``omniseg predict`` calls: class masks (palette PNGs), instances
(16-bit id PNGs + COCO results JSON), panoptic segments (COCO panoptic PNGs + JSON) or NIfTI label volumes,
each with overlays."""

from __future__ import annotations

import inspect
import json
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from omniseg.core.atomic import remove_stale_temporaries, write_text, write_with
from omniseg.core.labels import class_ids
from omniseg.errors import ConfigError
from omniseg.inference.prediction.inputs import collect_images, collect_volumes
from omniseg.inference.tiling.large_images import ImageBands, PngRowWriter, TiffTileWriter
from omniseg.inference.tiling.sliding_window import WindowPlan, finished_bands
from omniseg.data.imageio import rgb_uint8, to_image_tensor, uint8_image
from omniseg.inference.prediction.predictor import Predictor
from omniseg.models.hub import load_card
from omniseg.inference.writers import panoptic_json, write_instances, write_panoptic, write_prediction
from omniseg.metrics import coco_results
from omniseg.models.panoptic import panoptic_merge
from omniseg.viz.overlay import overlay

Progress = Callable[[int, int], None]  # (files done, files in all)
_MASK_SUFFIXES = {"png": ".png", "tiff": ".tif"}


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
    semantic: str | Path | Predictor | None = None, progress: Progress | None = None, tile: int | str | None = "auto",
    overlap: float = 0.5, tta: str | None = None, probabilities: bool = False, overwrite: bool = False,
    batch_size: int | None = None, tile_progress: Progress | None = None, backend: str = "torch", devices: int = 1,
    mask_format: str = "png", exported: str | Path | None = None, precision: str = "32",
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

    Semantic runs predict any size in bounded memory (:mod:`~omniseg.inference.tiling.sliding_window`): ``tile`` is the
    side of a tile (``0``: the training size; ``"auto"``: the training size for images over four tiles' area,
    else the whole image at once; ``None``: always the whole image), ``overlap`` the tiles' overlap, ``tta`` the
    test-time augmentations (e.g. ``"flip,scale=0.75,1,1.25"``); TIFF inputs are read band by band and the PNGs
    written row by row; ``mask_format="tiff"`` writes the class ids (and probabilities) as tiled TIFFs (256-pixel
    tiles, zlib, BigTIFF when large) instead. Instance runs take the same ``tile`` (each tile at its own
    resolution, detections merged at the seams: :mod:`~omniseg.inference.tiling.tiled_instances`) and ``tta`` (merged
    detections); volumetric runs tile by the training patch, read slab by slab, and take flips. ``probabilities`` adds
    ``<stem>_probabilities/<k>_<class>.png`` (uint8, 255 = 1). Files (of semantic, instance and volumetric runs)
    whose outputs exist are skipped unless ``overwrite`` (every file is written whole or not at all, so an
    interrupted run continues where it stopped); ``tile_progress(done, total)`` follows the tiles of a file;
    ``backend`` ("onnxruntime", "openvino") runs the tiles of a 2D semantic run through that runtime, from the
    ``exported`` file; ``precision`` is the torch backend's arithmetic ("auto": bfloat16 where measured faster; see
    :class:`Predictor`). ``devices`` > 1
    shares the files of a semantic run among that many processes (one GPU each where there are GPUs; the CPU's
    threads split between them otherwise), each writing its own outputs; under ``torchrun`` (``RANK`` and
    ``WORLD_SIZE`` set) each rank takes its share the same way, on one machine or several.

    Example:
        >>> predict_images("runs/demo", ["photos/"], "preds/")  # doctest: +SKIP
        PredictionSummary(out=PosixPath('preds'), kind='semantic', files=12, instances=0, index=None)
    """
    options = {"score_threshold": score_threshold, "mask_threshold": mask_threshold, "overlap_threshold": overlap_threshold,
               "stuff_min_area": stuff_min_area, "instances": instances, "split_touching": split_touching, "semantic": semantic,
               "tile": tile, "overlap": overlap, "tta": tta, "probabilities": probabilities, "overwrite": overwrite,
               "batch_size": batch_size, "backend": backend, "devices": devices,
               "mask_format": mask_format, "exported": exported}
    out, report = Path(out), progress or (lambda done, total: None)
    if devices > 1:
        card = run.card if isinstance(run, Predictor) else load_card(run)
        refuse_unhonoured(_kind(card.task, False, instances, semantic), options, run)
        return _predict_on_processes(run, inputs, out, devices, {
            "device": device, "tile": tile, "overlap": overlap, "tta": tta, "probabilities": probabilities,
            "overwrite": overwrite, "batch_size": batch_size, "backend": backend, "mask_format": mask_format,
            "exported": None if exported is None else str(exported), "precision": precision})
    predictor = run if isinstance(run, Predictor) else Predictor(run, device=device, backend=backend, exported=exported,
                                                                 precision=precision)
    kind = _kind(predictor.task, predictor.volumetric, instances, semantic)
    refuse_unhonoured(kind, options, run)
    if kind != "semantic" and _shard()[1] > 1:
        raise ConfigError(f"prediction on several processes takes 2D semantic runs; {run} makes a {kind} prediction: "
                          "predict it on one process")
    tiling = {"tile": tile, "overlap": overlap, "tta": tta}
    if kind == "volumetric":
        return _predict_volumes(predictor, inputs, out, report, overwrite=overwrite, **tiling)
    if kind in ("instance", "semantic with instances"):
        return _predict_instances(predictor, inputs, out, score_threshold, mask_threshold, split_touching, report,
                                  overwrite=overwrite, **tiling)
    if kind in ("panoptic", "instance with a semantic partner"):
        merge = {"score_threshold": score_threshold}
        merge |= {"overlap_threshold": overlap_threshold} if overlap_threshold is not None else {}
        merge |= {"stuff_min_area": stuff_min_area} if stuff_min_area is not None else {}
        partner = _semantic_partner(predictor, semantic, device) if semantic is not None else None
        return _predict_panoptic(predictor, partner, inputs, out, merge, mask_threshold, report, **tiling)
    return _predict_semantic(predictor, inputs, out, report, probabilities=probabilities, batch_size=batch_size,
                             tile_progress=tile_progress, mask_format=mask_format, overwrite=overwrite, **tiling)


# What each kind of prediction honours beyond the inputs, the output folder, the device and the progress callbacks. An
# option given a value other than its default that the kind does not honour is refused, never dropped in silence.
HONOURED = {
    "semantic": {"tile", "overlap", "tta", "probabilities", "batch_size", "backend", "devices", "mask_format", "overwrite",
                 "exported"},
    "semantic with instances": {"instances", "split_touching", "score_threshold", "mask_threshold", "tile", "overlap", "tta",
                                "overwrite"},
    "volumetric": {"tile", "overlap", "tta", "overwrite"},
    "instance": {"score_threshold", "mask_threshold", "tile", "overlap", "tta", "overwrite"},
    "instance with a semantic partner": {"semantic", "score_threshold", "mask_threshold", "overlap_threshold", "stuff_min_area",
                                         "tile", "overlap", "tta"},
    "panoptic": {"score_threshold", "mask_threshold", "overlap_threshold", "stuff_min_area"},
}


def _kind(task: str, volumetric: bool, instances: bool, semantic) -> str:
    if task == "semantic":
        return "volumetric" if volumetric else "semantic with instances" if instances else "semantic"
    if task == "instance" and semantic is not None:
        return "instance with a semantic partner"
    if task not in ("instance", "panoptic"):
        raise ConfigError(f"omniseg predict takes semantic, instance and panoptic runs; a {task} run is prompted instead "
                          "(omniseg prompt / omniseg autolabel)")
    return task


def refuse_unhonoured(kind: str, options: dict, run) -> None:
    """A one-line error naming the options (given values other than their defaults) that a ``kind`` prediction of
    ``run`` cannot honour, and what takes them."""
    defaults = {name: parameter.default for name, parameter in inspect.signature(predict_images).parameters.items()}
    refused = [name for name, value in options.items() if name not in HONOURED[kind] and value != defaults[name]]
    if refused:
        takers = {name: [k for k, names in HONOURED.items() if name in names] for name in refused}
        flags = "; ".join(f"--{name.replace('_', '-')} (it serves: {', '.join(takers[name])})" for name in refused)
        article = "an" if kind[0] in "aeiou" else "a"
        raise ConfigError(f"{run} makes {article} {kind} prediction, which cannot honour {flags}; leave them out")


def _predict_semantic(predictor: Predictor, inputs, out: Path, report: Progress, *, tile, overlap: float, tta: str | None,
                      probabilities: bool, batch_size: int | None, tile_progress: Progress | None, mask_format: str,
                      overwrite: bool) -> PredictionSummary:
    """A 2D semantic run over files (this process's share of them under torch.distributed or torchrun)."""
    rank, world = _shard()
    images = collect_images(inputs)[rank::world]
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(out)  # what an interrupted run was writing: never a finished file
    suffix = _MASK_SUFFIXES.get(mask_format)
    if suffix is None:
        raise ConfigError(f"mask format {mask_format!r} is unknown; use png or tiff")
    for done, path in enumerate(images, 1):
        if overwrite or not (out / f"{path.stem}{suffix}").is_file() or not (out / f"{path.stem}_overlay.png").is_file():
            predict_large_image(predictor, path, out, tile=tile, overlap=overlap, tta=tta, probabilities=probabilities,
                                batch_size=batch_size, progress=tile_progress, mask_format=mask_format)
        report(done, len(images))
    return PredictionSummary(out, "semantic", len(images))


def _shard() -> tuple[int, int]:
    """``(rank, world size)``: torch.distributed's when it is initialised, else torchrun's environment, else (0, 1)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def _predict_on_processes(run, inputs, out, devices: int, options: dict) -> PredictionSummary:
    """``predict_images`` on ``devices`` processes (torch.distributed, gloo), each predicting its share of the files."""
    import socket

    import torch.multiprocessing as mp

    if isinstance(run, Predictor):
        raise ConfigError("prediction on several processes takes a run directory, not a Predictor")
    images = collect_images(inputs)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    try:
        mp.spawn(_shard_worker, args=(devices, port, str(run), [str(i) for i in inputs], str(out), options), nprocs=devices, join=True)
    except mp.ProcessRaisedException as exc:  # the worker's own error, in one line
        raise ConfigError(f"a prediction process failed: {str(exc).strip().splitlines()[-1]}") from None
    return PredictionSummary(Path(out), "semantic", len(images))


def _shard_worker(rank: int, world: int, port: int, run: str, inputs: list[str], out: str, options: dict) -> None:
    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        device = options.pop("device")
        if device is None and torch.cuda.is_available():
            device = f"cuda:{rank % torch.cuda.device_count()}"
        elif device in (None, "cpu"):
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
        predict_images(run, inputs, out, device=device, **options)
        dist.barrier()  # every share written before the command returns
    finally:
        dist.destroy_process_group()


def predict_large_image(predictor: Predictor, path: Path, out: Path, *, tile: int | str | None = "auto", overlap: float = 0.5,
                        tta: str | None = None, probabilities: bool = False, batch_size: int | None = None,
                        progress: Progress | None = None, mask_format: str = "png") -> list[Path]:
    """``<stem>.png`` (class ids, palette; ``<stem>.tif`` with ``mask_format="tiff"``) and ``<stem>_overlay.png``
    of one image of any size, read band by band and written row by row (see :func:`predict_images`); returns the
    paths written."""
    info = predictor.info
    with ImageBands(path) as bands:
        shape = (bands.height, bands.width)
        tile = tile_for(predictor, shape, tile)
        size = shape if tile is None else tile
        plan = WindowPlan.of(shape, size, overlap)
        tiles_done = 0

        def count(n: int) -> None:
            nonlocal tiles_done
            tiles_done += n
            if progress is not None:
                progress(tiles_done, plan.count)

        suffix = _MASK_SUFFIXES[mask_format]
        masks = TiffTileWriter if mask_format == "tiff" else PngRowWriter
        names = [f"{path.stem}{suffix}", f"{path.stem}_overlay.png"]
        writers = [masks(out / names[0], shape[1], shape[0], palette=info.palette),
                   PngRowWriter(out / names[1], shape[1], shape[0], mode="RGB", level=1)]
        if probabilities:
            folder = out / f"{path.stem}_probabilities"
            folder.mkdir(exist_ok=True)
            names += [f"{folder.name}/{k}_{name}{suffix}" for k, name in enumerate(info.class_names)]
            writers += [masks(out / name, shape[1], shape[0], mode="L") for name in names[2:]]
        try:
            with torch.inference_mode():
                for start, band in finished_bands(predictor.forward_of(tta), bands, shape, info.num_classes, tile=size,
                                                  overlap=overlap, batch_size=batch_size or predictor.tiles_per_forward,
                                                  device=predictor.device, on_tiles=count):
                    labels = class_ids(band).to(torch.uint8).cpu().numpy()
                    writers[0].write(labels)
                    for row in range(0, len(labels), 64):  # the overlay's float blend, 64 rows at a time
                        image = bands(start + row, start + min(row + 64, len(labels)))
                        writers[1].write(overlay(uint8_image(image).permute(1, 2, 0).numpy(), labels[row:row + 64], info.palette,
                                                 ignore_index=info.ignore_index))
                    for k, writer in enumerate(writers[2:]):
                        writer.write((band[k] * 255).round().to(torch.uint8).cpu().numpy())
            for writer in writers:
                writer.close()
        except BaseException:
            for writer in writers:
                writer.abort()
            raise
    return [out / name for name in names]


def tile_for(predictor: Predictor, shape: tuple[int, ...], tile: int | Sequence[int] | str | None) -> int | list[int] | None:
    """The tile of an input of ``shape`` (see :func:`predict_images`): ``"auto"`` tiles inputs over four tiles'
    area (volume), ``0`` is the training size, ``None`` the whole input."""
    side = predictor.tile_size
    if tile == "auto":
        sides = [side] * len(shape) if isinstance(side, int) else side
        return side if math.prod(shape) > 4 * math.prod(sides) else None
    return side if tile == 0 else tile


def _image_entry(image_id: int, path: Path, size: tuple[int, int]) -> dict:
    return {"id": image_id, "file_name": path.name, "height": size[0], "width": size[1]}


def _predict_instances(predictor: Predictor, inputs, out: Path, score_threshold: float, mask_threshold: float,
                       split_touching: bool, report: Progress, *, tile, overlap: float, tta: str | None,
                       overwrite: bool) -> PredictionSummary:
    """Each image's instances (``<stem>_instances.png``, its overlay and ``<stem>_results.json``, written last so
    that a run stopped halfway takes up the images it had not finished), then ``coco_results.json`` of them all."""
    images = collect_images(inputs)
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(out)
    entries, results = [], []
    for image_id, path in enumerate(images, 1):
        done = out / f"{path.stem}_results.json"
        if overwrite or not done.is_file() or not (out / f"{path.stem}_instances.png").is_file():
            image = to_image_tensor(path)
            size = tuple(image.shape[-2:])
            found = predictor.predict_instances(image, score_threshold=score_threshold, mask_threshold=mask_threshold,
                                                split_touching=split_touching, tile=tile_for(predictor, size, tile),
                                                overlap=overlap, tta=tta)
            write_instances(out, path.stem, rgb_uint8(image), found, predictor.info)
            record = {"size": size, "results": coco_results(0, found)}
            write_text(done, json.dumps(record))
        else:  # finished by an earlier run
            record = json.loads(done.read_text())
        results += [result | {"image_id": image_id} for result in record["results"]]
        entries.append(_image_entry(image_id, path, record["size"]))
        report(image_id, len(images))
    write_text(out / "coco_results.json", json.dumps(results))
    write_text(out / "images.json", json.dumps(entries, indent=1))
    return PredictionSummary(out, "instances", len(images), instances=len(results), index=out / "coco_results.json")


def _predict_panoptic(predictor: Predictor, partner: Predictor | None, inputs, out: Path, merge: dict, mask_threshold: float,
                      report: Progress, *, tile, overlap: float, tta: str | None) -> PredictionSummary:
    """A panoptic model's own merge, or an instance model's instances merged with a semantic ``partner``'s masks
    (both tiled and augmented as asked)."""
    if partner is None and (isinstance(tile, int) or tta):
        raise ConfigError(f"{predictor.card.architecture} predicts whole images; for tiles or --tta, pair an instance run "
                          "with a semantic run (--semantic)")
    images = collect_images(inputs)
    annotations = []
    for image_id, path in enumerate(images, 1):
        image = to_image_tensor(path)
        pixels = rgb_uint8(image)
        if partner is None:
            ids, segments = predictor.predict_panoptic(image, mask_threshold=mask_threshold, **merge)
        else:
            found = predictor.predict_instances(image, score_threshold=0.0, mask_threshold=mask_threshold, overlap=overlap, tta=tta,
                                                tile=tile_for(predictor, pixels.shape[:2], tile))
            classes = partner.predict(image, overlap=overlap, tta=tta, tile=tile_for(partner, pixels.shape[:2], tile))
            ids, segments = panoptic_merge(classes, found["masks"], found["labels"].tolist(), found["scores"].tolist(),
                                           things=predictor.info.things, **merge)
        write_panoptic(out, path.stem, pixels, ids, segments, predictor.info)
        annotations.append({"image_id": image_id, "file_name": f"{path.stem}_panoptic.png",
                            "image": _image_entry(image_id, path, pixels.shape[:2]),
                            "segments_info": [{k: s[k] for k in ("id", "category_id", "area", "score")} | {"iscrowd": 0}
                                              for s in segments]})
        report(image_id, len(images))
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "panoptic.json", json.dumps(panoptic_json(annotations, predictor.info)))
    return PredictionSummary(out, "panoptic", len(images), index=out / "panoptic.json")


def _semantic_partner(predictor: Predictor, semantic: str | Path | Predictor, device: str | None) -> Predictor:
    """The semantic run merged with an instance run's instances, checked against its classes."""
    partner = semantic if isinstance(semantic, Predictor) else Predictor(semantic, device=device, precision=predictor.precision)
    if partner.task != "semantic" or partner.volumetric:
        raise ConfigError(f"--semantic {semantic} is not a 2D semantic run (it is {partner.task}); pass one trained with --task semantic")
    if partner.info.class_names != predictor.info.class_names:
        raise ConfigError(f"--semantic {semantic} predicts {partner.info.class_names}, the instance run {predictor.info.class_names}; "
                          "the merge needs the same classes")
    return partner


def _predict_volumes(predictor: Predictor, inputs, out: Path, report: Progress, *, tile, overlap: float, tta: str | None,
                     overwrite: bool) -> PredictionSummary:
    """NIfTI in, NIfTI labels out (on the input's grid), plus a PNG overlay of the middle slice; volumes whose
    outputs exist are skipped unless ``overwrite``."""
    from omniseg.data.formats.nifti import NIFTI_SUFFIXES, case_id

    volumes = collect_volumes(inputs, NIFTI_SUFFIXES)
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(out)
    for done, path in enumerate(volumes, 1):
        case = case_id(path)
        if overwrite or not (out / f"{case}.nii.gz").is_file() or not (out / f"{case}_middle_slice.png").is_file():
            predict_large_volume(predictor, path, out, tile=tile, overlap=overlap, tta=tta)
        report(done, len(volumes))
    return PredictionSummary(out, "volumes", len(volumes))


def predict_large_volume(predictor: Predictor, path: Path, out: Path, *, tile: int | Sequence[int] | str | None = "auto",
                         overlap: float = 0.5, tta: str | None = None, batch_size: int = 2) -> list[Path]:
    """``<case>.nii.gz`` (class ids on the input's grid) and ``<case>_middle_slice.png`` (+ overlay) of one NIfTI
    volume. Tiled (see :func:`tile_for`), the volume is read slab by slab along its z axis (normalised with the
    whole volume's statistics, from a first pass) and only the class ids (one byte a voxel) are held whole."""
    from omniseg.data.formats.nifti import NiftiSlabs, case_id, write_nifti_labels
    from omniseg.viz.overlay import grey_to_rgb

    slabs = NiftiSlabs(path)
    Path(out).mkdir(parents=True, exist_ok=True)
    tile = tile_for(predictor, slabs.shape, tile)
    if tile is None:
        labels = predictor.predict_volume(slabs.raw(), overlap=overlap, tta=tta)
    else:
        labels = np.empty(slabs.shape, np.uint8 if predictor.info.num_classes <= 256 else np.int64)
        with torch.inference_mode():
            for start, band in finished_bands(predictor.forward_of(tta), slabs, slabs.shape, predictor.info.num_classes, tile=tile,
                                              overlap=overlap, batch_size=batch_size, device=predictor.device):
                labels[start:start + band.shape[1]] = class_ids(band).cpu().numpy()
    case = case_id(path)
    write_with(out / f"{case}.nii.gz", lambda temporary: write_nifti_labels(temporary, labels, slabs.affine))
    middle = slabs.shape[0] // 2
    return [out / f"{case}.nii.gz", *write_prediction(out, f"{case}_middle_slice", grey_to_rgb(slabs.raw(middle, middle + 1)[0, 0]),
                                                      labels[middle], predictor.info)]
