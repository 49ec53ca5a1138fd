"""``omniseg predict``: masks (palette PNGs) and overlays for images of any size."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.progress import Progress

from omniseg.data.imageio import IMAGE_SUFFIXES
from omniseg.errors import DataError


def add_parser(sub, name: str) -> None:
    p = sub.add_parser(name, help="predict masks", description="Predict masks for images or folders of images.")
    p.add_argument("run_dir", help="run directory written by `omniseg train`")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--device", help="cpu, cuda, ... (default: cuda when available)")


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
    if predictor.volumetric:
        return _predict_volumes(predictor, args, console)
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
