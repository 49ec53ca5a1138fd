"""``omniseg predict``: masks (palette PNGs), instances (id PNGs + COCO results JSON) or panoptic segments
(COCO panoptic PNGs + JSON), with overlays, for images of any size."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.progress import Progress

from omniseg.data.imageio import IMAGE_SUFFIXES
from omniseg.errors import ConfigError, DataError


def add_parser(sub, name: str) -> None:
    p = sub.add_parser(name, help="predict masks", description="Predict masks for images or folders of images.")
    p.add_argument("run_dir", help="run directory written by `omniseg train`")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--device", help="cpu, cuda, ... (default: cuda when available)")
    p.add_argument("--score-threshold", type=float, default=0.5, help="instance and panoptic models: keep instances scoring at least this")
    p.add_argument("--mask-threshold", type=float, default=0.5, help="instance and panoptic models: mask probability cut")
    p.add_argument("--overlap-threshold", type=float, help="panoptic models: drop an instance whose mask is more than this "
                   "fraction covered by better ones (default: the model's)")
    p.add_argument("--stuff-min-area", type=int, help="panoptic models: smallest stuff segment in pixels (default: the model's)")
    p.add_argument("--instances", action="store_true", help="with a semantic run: its thing classes' connected regions as "
                   "instances (instance PNGs, overlays, COCO results), scored by mean class probability")
    p.add_argument("--split-touching", action="store_true", help="with --instances: split touching objects by a watershed")
    p.add_argument("--semantic", metavar="RUN", help="with an instance run: merge its instances with this semantic run's masks "
                   "(same classes) into panoptic output, as a panoptic model's are merged")


def collect_images(inputs: list[str]) -> list[Path]:
    """Files as given, folders expanded to their images (sorted); a missing path is an error."""
    images = []
    for item in map(Path, inputs):
        if item.is_dir():
            images += sorted(p for p in item.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        elif item.is_file():
            images.append(item)
        else:
            raise DataError(f"input {item} does not exist; pass image files or folders")
    if not images:
        raise DataError(f"no images found in {', '.join(inputs)} (looked for {', '.join(IMAGE_SUFFIXES)})")
    return images


def run(args: argparse.Namespace, console: Console) -> int:
    from omniseg.inference import Predictor, write_prediction
    from omniseg.inference.predictor import to_image_tensor

    predictor = Predictor(args.run_dir, device=args.device)
    if args.semantic is not None and predictor.task != "instance":
        raise ConfigError(f"--semantic pairs a semantic run with an instance run, but {args.run_dir} is a {predictor.task} run")
    if args.instances and (predictor.task != "semantic" or predictor.volumetric):
        raise ConfigError(f"--instances turns a 2D semantic run's masks into instances, but {args.run_dir} is a "
                          f"{'volumetric' if predictor.volumetric else predictor.task} run")
    if predictor.volumetric:
        return _predict_volumes(predictor, args, console)
    if predictor.task in ("instance", "panoptic") or args.instances:
        return _predict_objects(predictor, args, console)
    images = collect_images(args.inputs)
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("predicting", total=len(images))
        for path in images:
            image = to_image_tensor(path)
            mask = predictor.predict(image)
            write_prediction(args.out, path.stem, image.permute(1, 2, 0).numpy(), mask, predictor.info)
            progress.advance(task)
    console.print(f"wrote {len(images)} masks and overlays to [bold]{args.out}[/]")
    return 0


def _predict_objects(predictor, args: argparse.Namespace, console: Console) -> int:
    """Instance models (or a semantic one with ``--instances``): ``<stem>_instances.png``, overlays and
    ``coco_results.json`` (RLE masks; image ids as in ``images.json``). Panoptic models, or an instance
    model with ``--semantic RUN``: ``<stem>_panoptic.png``, overlays and ``panoptic.json``."""
    import json

    from omniseg.inference.predictor import to_image_tensor
    from omniseg.inference.writers import panoptic_json, write_instances, write_panoptic
    from omniseg.metrics import coco_results
    from omniseg.models.panoptic import panoptic_merge

    merge = {"score_threshold": args.score_threshold}
    merge |= {"overlap_threshold": args.overlap_threshold} if args.overlap_threshold is not None else {}
    merge |= {"stuff_min_area": args.stuff_min_area} if args.stuff_min_area is not None else {}
    panoptic = predictor.task == "panoptic" or args.semantic is not None
    if args.semantic is not None:
        semantic = _semantic_partner(predictor, args)

        def predict_panoptic(image, mask_threshold):
            instances = predictor.predict_instances(image, score_threshold=0.0, mask_threshold=mask_threshold)
            return panoptic_merge(semantic.predict(image), instances["masks"], instances["labels"].tolist(),
                                  instances["scores"].tolist(), things=predictor.info.things, **merge)
    else:
        def predict_panoptic(image, mask_threshold):
            return predictor.predict_panoptic(image, mask_threshold=mask_threshold, **merge)
    out = Path(args.out)
    images = collect_images(args.inputs)
    entries, results, annotations = [], [], []
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("predicting", total=len(images))
        for image_id, path in enumerate(images, 1):
            image = to_image_tensor(path)
            pixels = image.permute(1, 2, 0).numpy()
            entry = {"id": image_id, "file_name": path.name, "height": pixels.shape[0], "width": pixels.shape[1]}
            if panoptic:
                ids, segments = predict_panoptic(image, args.mask_threshold)
                write_panoptic(out, path.stem, pixels, ids, segments, predictor.info)
                annotations.append({"image_id": image_id, "file_name": f"{path.stem}_panoptic.png", "image": entry,
                                    "segments_info": [{k: s[k] for k in ("id", "category_id", "area", "score")} | {"iscrowd": 0}
                                                      for s in segments]})
            else:
                instances = predictor.predict_instances(image, score_threshold=args.score_threshold, mask_threshold=args.mask_threshold,
                                                        split_touching=args.split_touching)
                write_instances(out, path.stem, pixels, instances, predictor.info)
                results += coco_results(image_id, instances)
                entries.append(entry)
            progress.advance(task)
    if panoptic:
        (out / "panoptic.json").write_text(json.dumps(panoptic_json(annotations, predictor.info)))
        console.print(f"wrote {len(images)} panoptic PNGs, overlays and panoptic.json to [bold]{out}[/]")
    else:
        (out / "coco_results.json").write_text(json.dumps(results))
        (out / "images.json").write_text(json.dumps(entries, indent=1))
        console.print(f"wrote {len(results)} instances in {len(images)} images (instance PNGs, overlays, coco_results.json, "
                      f"images.json) to [bold]{out}[/]")
    return 0


def _semantic_partner(predictor, args: argparse.Namespace):
    """The semantic run that ``--semantic`` names, checked against the instance run's classes."""
    from omniseg.inference import Predictor

    semantic = Predictor(args.semantic, device=args.device)
    if semantic.task != "semantic" or semantic.volumetric:
        raise ConfigError(f"--semantic {args.semantic} is not a 2D semantic run (it is {semantic.task}); pass one trained with --task semantic")
    if semantic.info.class_names != predictor.info.class_names:
        raise ConfigError(f"--semantic {args.semantic} predicts {semantic.info.class_names}, the instance run {predictor.info.class_names}; "
                          "the merge needs the same classes")
    return semantic


def _predict_volumes(predictor, args: argparse.Namespace, console: Console) -> int:
    """NIfTI in, NIfTI labels out (on the input's grid), plus a PNG overlay of the middle slice."""
    from omniseg.data.formats.nifti import NIFTI_SUFFIXES, case_id, read_nifti, write_nifti_labels
    from omniseg.inference import write_prediction
    from omniseg.viz.overlay import grey_to_rgb

    volumes = []
    for item in map(Path, args.inputs):
        found = sorted(p for p in item.iterdir() if p.name.endswith(NIFTI_SUFFIXES)) if item.is_dir() else [item]
        for path in found:
            if not path.is_file() or not path.name.endswith(NIFTI_SUFFIXES):
                raise DataError(f"input {path} is not a NIfTI file; a volumetric model predicts .nii / .nii.gz volumes")
            volumes.append(path)
    if not volumes:
        raise DataError(f"no NIfTI volumes found in {', '.join(args.inputs)}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("predicting", total=len(volumes))
        for path in volumes:
            volume, affine = read_nifti(path)
            labels = predictor.predict_volume(volume)
            case = case_id(path)
            write_nifti_labels(out / f"{case}.nii.gz", labels, affine)
            middle = volume.shape[1] // 2
            write_prediction(out, f"{case}_middle_slice", grey_to_rgb(volume[0, middle]), labels[middle], predictor.info)
            progress.advance(task)
    console.print(f"wrote {len(volumes)} label volumes (NIfTI) and middle-slice overlays to [bold]{out}[/]")
    return 0
