"""Plots written into run directories: training curves, confusion matrix, sample panels."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from omniseg.core.atomic import write_with
from omniseg.viz.overlay import colorize, overlay


def _figure(*grid, figsize: tuple[float, float], squeeze: bool = True):
    """A figure drawn off screen (no pyplot, so the user's matplotlib backend is never touched) and its axes."""
    fig = Figure(figsize=figsize)
    return fig, fig.subplots(*grid, squeeze=squeeze)


def plot_curves(history_csv: str | Path, out: str | Path,
                metrics: Sequence[str] = ("val_miou", "val_pixel_accuracy", "val_mean_dice")) -> None:
    """Loss (train/val) and the validation ``metrics`` against the optimiser step, from ``history.csv``."""
    with open(history_csv, newline="") as f:
        rows = list(csv.DictReader(f))

    def series(key: str) -> tuple[list[float], list[float]]:
        pts = [(float(r["step"]), float(r[key])) for r in rows if r.get(key) not in (None, "", "nan")]
        return [p[0] for p in pts], [p[1] for p in pts]

    fig, (ax_loss, ax_metric) = _figure(1, 2, figsize=(10, 4))
    for ax, keys in ((ax_loss, ("train_loss", "val_loss")), (ax_metric, metrics)):
        for key in keys:
            xs, ys = series(key)
            if xs:  # detection runs have no validation loss
                ax.plot(xs, ys, marker="o", ms=3, label=key)
    ax_loss.set(xlabel="step", ylabel="loss", title="Loss")
    ax_metric.set(xlabel="step", ylabel="score", title="Validation", ylim=(0, 1))
    for ax in (ax_loss, ax_metric):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    write_with(out, lambda path: fig.savefig(path, dpi=100))


def plot_click_curves(curves: dict[str, Sequence[float]], out: str | Path) -> None:
    """Mean IoU against the number of clicks (one line per model or split, ``{name: [mIoU after 1, 2, ...
    clicks]}``), with the 85% and 90% lines that NoC@85 and NoC@90 count to."""
    fig, ax = _figure(figsize=(6, 4))
    for name, values in curves.items():
        ax.plot(range(1, len(values) + 1), values, marker="o", ms=3, label=name)
    for level in (0.85, 0.9):
        ax.axhline(level, color="grey", lw=0.8, ls="--")
    ax.set(xlabel="clicks", ylabel="mean IoU", title="Interactive segmentation: mIoU after k clicks", ylim=(0, 1))
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    write_with(out, lambda path: fig.savefig(path, dpi=100))


def plot_confusion(matrix: np.ndarray, class_names: Sequence[str], out: str | Path) -> None:
    """Row-normalised confusion matrix (recall per true class), with counts' shares printed."""
    m = np.asarray(matrix, np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        norm = np.nan_to_num(m / m.sum(1, keepdims=True))
    k = len(class_names)
    size = max(4.0, 0.5 * k + 2)
    fig, ax = _figure(figsize=(size + 1, size))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(k), class_names, rotation=45, ha="right")
    ax.set_yticks(range(k), class_names)
    ax.set(xlabel="predicted", ylabel="true", title="Confusion matrix (row-normalised)")
    if k <= 25:
        for t in range(k):
            for p in range(k):
                ax.text(p, t, f"{norm[t, p]:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if norm[t, p] > 0.5 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    write_with(out, lambda path: fig.savefig(path, dpi=100))


def plot_sample(image: np.ndarray, truth: np.ndarray | None, pred: np.ndarray, palette: Sequence[Sequence[int]],
                class_names: Sequence[str], out: str | Path, *, ignore_index: int) -> None:
    """Image | ground truth | prediction | overlay, with a legend of the classes shown."""
    panels = [("image", image)]
    if truth is not None:
        panels.append(("ground truth", colorize(truth, palette, ignore_index=ignore_index)))
    panels += [("prediction", colorize(pred, palette, ignore_index=ignore_index)),
               ("overlay", overlay(image, pred, palette, ignore_index=ignore_index))]
    fig, axes = _figure(1, len(panels), figsize=(3.2 * len(panels), 3.9))
    for ax, (title, array) in zip(axes, panels):
        ax.imshow(array, interpolation="nearest")
        ax.set_title(title)
        ax.axis("off")
    shown = sorted(set(np.unique(pred).tolist()) | (set(np.unique(truth).tolist()) if truth is not None else set()))
    handles = [Rectangle((0, 0), 1, 1, color=np.asarray(palette[c]) / 255) for c in shown if c < len(class_names)]
    labels = [class_names[c] for c in shown if c < len(class_names)]
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 8) or 1, fontsize=8)
    fig.tight_layout(rect=(0, 0.08 if labels else 0, 1, 1))
    write_with(out, lambda path: fig.savefig(path, dpi=90))


def plot_samples_grid(samples: Sequence[tuple[str, np.ndarray, np.ndarray | None]], palette: Sequence[Sequence[int]],
                      class_names: Sequence[str], out: str | Path, *, ignore_index: int, columns: int = 4,
                      title: str = "") -> None:
    """A grid of ``(title, image uint8 [H, W, 3], mask or None)`` with the masks overlaid, and one
    legend of the classes shown (ignored pixels left as they are)."""
    columns = max(1, min(columns, len(samples)))
    rows = max(1, -(-len(samples) // columns))
    fig, axes = _figure(rows, columns, figsize=(3.2 * columns, 3.0 * rows + 0.6), squeeze=False)
    shown: set[int] = set()
    for ax in axes.reshape(-1):
        ax.axis("off")
    for ax, (name, image, mask) in zip(axes.reshape(-1), samples):
        if mask is not None:
            image = overlay(image, mask, palette, ignore_index=ignore_index, alpha=0.55)
            shown |= set(np.unique(mask).tolist())
        ax.imshow(image, interpolation="nearest")
        ax.set_title(name[:28], fontsize=8)
    classes = [c for c in sorted(shown) if 0 <= c < len(class_names)]
    handles = [Rectangle((0, 0), 1, 1, color=np.asarray(palette[c]) / 255) for c in classes]
    fig.legend(handles, [class_names[c] for c in classes], loc="lower center", ncol=min(len(classes), 6) or 1, fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    legend_rows = -(-len(classes) // 6)
    fig.tight_layout(rect=(0, min(0.05 * legend_rows / rows, 0.4), 1, 1))
    write_with(out, lambda path: fig.savefig(path, dpi=90))


def plot_instances(image: np.ndarray, masks: np.ndarray, labels: Sequence[int], scores: Sequence[float] | None,
                   class_names: Sequence[str], out: str | Path, *, truth: tuple[np.ndarray, Sequence[int]] | None = None,
                   alpha: float = 0.5) -> None:
    """Instances over an image, one colour each, with class name (and score, where not None) at each box corner;
    ``truth`` (its instance masks and labels) is drawn in a panel beside it when given."""
    from omniseg.core.info import default_palette

    def draw(ax, instance_masks, instance_labels, instance_scores, title):
        canvas = image.astype(np.float32).copy()
        colours = default_palette(len(instance_masks) + 1)[1:]
        for mask, colour in zip(instance_masks, colours):
            canvas[mask] = canvas[mask] * (1 - alpha) + np.asarray(colour) * alpha
        ax.imshow(canvas.round().clip(0, 255).astype(np.uint8))
        for k, (mask, label) in enumerate(zip(instance_masks, instance_labels)):
            ys, xs = np.nonzero(mask)
            if len(xs):
                text = class_names[label] if label < len(class_names) else str(label)
                text += f" {instance_scores[k]:.2f}" if instance_scores is not None and instance_scores[k] is not None else ""
                ax.text(xs.min(), ys.min(), text, fontsize=6, color="white", va="bottom",
                        bbox={"facecolor": np.asarray(colours[k]) / 255, "alpha": 0.7, "pad": 1, "linewidth": 0})
        ax.set_title(title)
        ax.axis("off")

    panels = 2 if truth is not None else 1
    fig, axes = _figure(1, panels, figsize=(5 * panels, 4.5), squeeze=False)
    if truth is not None:
        draw(axes[0, 0], truth[0], list(truth[1]), None, "ground truth")
    draw(axes[0, -1], masks, list(labels), scores, f"prediction ({len(masks)} instances)")
    fig.tight_layout()
    write_with(out, lambda path: fig.savefig(path, dpi=90))


__all__ = ["plot_confusion", "plot_curves", "plot_instances", "plot_sample", "plot_samples_grid"]
