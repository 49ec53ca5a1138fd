"""What to predict: image files and folders (or NIfTI volumes) given on a command line or in a list."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from omniseg.data.imageio import IMAGE_SUFFIXES, list_image_files
from omniseg.errors import DataError


def collect_images(inputs: Sequence[str | Path]) -> list[Path]:
    """Files as given, folders expanded to their images (sorted); a missing path is an error."""
    images = []
    for item in map(Path, inputs):
        if item.is_dir():
            images += list_image_files(item)
        elif item.is_file():
            images.append(item)
        else:
            raise DataError(f"input {item} does not exist; pass image files or folders")
    if not images:
        raise DataError(f"no images found in {', '.join(map(str, inputs))} (looked for {', '.join(IMAGE_SUFFIXES)})")
    return images


def collect_volumes(inputs: Sequence[str | Path], suffixes: tuple[str, ...]) -> list[Path]:
    """NIfTI files as given, folders expanded to theirs (sorted); anything else is an error."""
    volumes = []
    for item in map(Path, inputs):
        found = sorted(p for p in item.iterdir() if p.name.endswith(suffixes)) if item.is_dir() else [item]
        for path in found:
            if not path.is_file() or not path.name.endswith(suffixes):
                raise DataError(f"input {path} is not a NIfTI file; a volumetric model predicts .nii / .nii.gz volumes")
            volumes.append(path)
    if not volumes:
        raise DataError(f"no NIfTI volumes found in {', '.join(map(str, inputs))}")
    return volumes
