"""DatasetInfo: what a model needs to know of its dataset's classes, and the default palette.

It travels with the model into the run directory, so predictions are named and coloured.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass, field
from typing import Any

def default_palette(num_classes: int) -> list[tuple[int, int, int]]:
    """Distinct colours: black for class 0, then evenly spaced hues at two brightness levels.

    Example:
        >>> default_palette(3)[0]
        (0, 0, 0)
    """
    colours = [(0, 0, 0)]
    for i in range(1, num_classes):
        hue = ((i - 1) * 0.618033988749895) % 1.0  # golden-ratio steps keep neighbours apart
        value = 0.95 if i % 2 else 0.7
        r, g, b = colorsys.hsv_to_rgb(hue, 0.85, value)
        colours.append((round(r * 255), round(g * 255), round(b * 255)))
    return colours


@dataclass
class DatasetInfo:
    """What a model needs to know about its dataset's classes.

    Args:
        class_names: one name per class id ``0..K-1``, each name once.
        palette: one RGB colour per class (defaults to :func:`default_palette`).
        ignore_index: the mask value of unlabelled (void) pixels, which no loss or metric counts. The
            dataset says which (a reader passes it; nothing below the readers picks one). Usually a value
            outside ``0..K-1`` (255); a class id (a class named "void" or "unlabelled" at 0, say) makes
            that class void: never a training target and left out of the metrics' means.
        things: ids of countable classes (instances); the others are stuff.

    Example:
        >>> DatasetInfo(["void", "road", "car"], ignore_index=0).void_class
        0
    """

    class_names: list[str]
    palette: list[tuple[int, int, int]] = field(default_factory=list)
    ignore_index: int = field(kw_only=True)
    things: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.class_names = [str(n) for n in self.class_names]
        repeated = sorted({n for n in self.class_names if self.class_names.count(n) > 1})
        if repeated:
            raise ValueError(f"class name {repeated[0]!r} is given {self.class_names.count(repeated[0])} times; "
                             "give each class its own name")
        if not self.palette:
            self.palette = default_palette(self.num_classes)
        self.palette = [tuple(int(c) for c in colour) for colour in self.palette]
        if len(self.palette) < self.num_classes:
            self.palette += default_palette(self.num_classes)[len(self.palette):]
        self.ignore_index = int(self.ignore_index)
        if self.ignore_index < 0:
            raise ValueError(f"ignore_index must be a mask value (0 or more), got {self.ignore_index}")

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def void_class(self) -> int | None:
        """The class id that ``ignore_index`` names, if it names one (a void class), else None."""
        return self.ignore_index if self.ignore_index < self.num_classes else None

    @property
    def stuff(self) -> list[int]:
        return [i for i in range(self.num_classes) if i not in self.things]

    def to_dict(self) -> dict[str, Any]:
        return {
            "class_names": list(self.class_names),
            "palette": [list(c) for c in self.palette[: self.num_classes]],
            "ignore_index": self.ignore_index,
            "things": list(self.things),
        }

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> DatasetInfo:
        return cls(
            class_names=list(values["class_names"]),
            palette=[tuple(c) for c in values.get("palette", [])],
            ignore_index=int(values["ignore_index"]),
            things=list(values.get("things", [])),
        )
