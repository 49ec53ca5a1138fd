"""The classical methods by name (what ``omniseg segment --method`` and the BSDS benchmark run), with their
parameters and the marks each needs."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from omniseg.classical.clustering import gaussian_mixture_segmentation, kmeans_segmentation, mean_shift_segmentation
from omniseg.classical.graph import merge_by_mean_colour, normalised_cut
from omniseg.classical.interactive import grabcut_segmentation, random_walker_segmentation
from omniseg.classical.mrf import mrf_segmentation
from omniseg.classical.split_merge import split_and_merge
from omniseg.classical.superpixels import felzenszwalb_segmentation, slic_superpixels
from omniseg.classical.threshold import multi_otsu_segmentation, otsu_segmentation
from omniseg.classical.watershed import watershed_segmentation

MARKS = ("markers", "seeds", "scribbles", "box", "regions")  # given as marks, not as parameters
HIDDEN = ("return_log_likelihood", "return_modes")


@dataclass(frozen=True)
class Method:
    function: Callable[..., Any]
    summary: str
    fixed: dict[str, Any] = field(default_factory=dict)  # what this name sets (not changeable by --param)
    defaults: dict[str, Any] = field(default_factory=dict)  # this name's defaults where the function has none
    marks: str | None = None  # "seeds" (required), "markers" (optional seeds), "box-or-scribbles"

    def parameters(self) -> dict[str, Any]:
        """The parameters a user may set, with their defaults."""
        return {name: self.defaults.get(name, parameter.default)
                for name, parameter in list(inspect.signature(self.function).parameters.items())[1:]
                if name not in MARKS + HIDDEN and name not in self.fixed}


METHODS: dict[str, Method] = {
    "otsu": Method(otsu_segmentation, "Otsu's threshold of the grey histogram (2 classes)"),
    "multi-otsu": Method(multi_otsu_segmentation, "multi-level Otsu thresholds", defaults={"classes": 3}),
    "kmeans": Method(kmeans_segmentation, "k-means in colour (+ position) space", defaults={"k": 4}),
    "mean-shift": Method(mean_shift_segmentation, "mean shift in colour (+ position) space"),
    "gmm": Method(gaussian_mixture_segmentation, "Bayesian classification, Gaussian mixture fitted by EM", defaults={"k": 4}),
    "watershed": Method(watershed_segmentation, "morphological watershed of the gradient (h-minima or seed markers)",
                        marks="markers"),
    "split-merge": Method(split_and_merge, "quadtree split and merge over the region adjacency graph"),
    "mrf-icm": Method(mrf_segmentation, "Potts MRF by iterated conditional modes", fixed={"method": "icm"}, defaults={"k": 4}),
    "mrf-gibbs": Method(mrf_segmentation, "Potts MRF by a Gibbs sampler under simulated annealing", fixed={"method": "gibbs"},
                        defaults={"k": 4, "iterations": 30}),
    "slic": Method(slic_superpixels, "SLIC superpixels", fixed={"zero": False}),
    "slic0": Method(slic_superpixels, "SLIC0 superpixels (adaptive compactness)", fixed={"zero": True}),
    "felzenszwalb": Method(felzenszwalb_segmentation, "Felzenszwalb-Huttenlocher graph-based regions"),
    "rag-merge": Method(merge_by_mean_colour, "SLIC superpixels merged by mean-colour threshold over their adjacency graph"),
    "ncut": Method(normalised_cut, "SLIC superpixels grouped by normalised cuts of their adjacency graph"),
    "grabcut": Method(grabcut_segmentation, "GrabCut foreground from a box and/or scribbles (1 background, 2 foreground)",
                      marks="box-or-scribbles"),
    "random-walker": Method(random_walker_segmentation, "random walker from seeds (value v = label v - 1)", marks="seeds"),
}


def method(name: str) -> Method:
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; choose one of {', '.join(METHODS)}")
    return METHODS[name]


def resolve_parameters(name: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """The method's parameters with ``overrides`` applied; an unknown name is an error that lists the known ones."""
    known = method(name).parameters()
    unknown = sorted(set(overrides) - set(known))
    if unknown:
        raise ValueError(f"method {name!r} has no parameter {', '.join(unknown)}; its parameters are {', '.join(known) or 'none'}")
    return {**known, **overrides}


def segment(image: np.ndarray, name: str, parameters: dict[str, Any] | None = None, *, seeds: np.ndarray | None = None,
            box: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """Labels ``[H, W]`` int64 of the method called ``name`` (see :data:`METHODS`) with ``parameters`` over its
    defaults. ``seeds`` are the method's marks (watershed markers, random-walker seeds, GrabCut scribbles);
    ``box`` is GrabCut's ``(left, top, right, bottom)``."""
    chosen = method(name)
    arguments = {**resolve_parameters(name, dict(parameters or {})), **chosen.fixed}
    if chosen.marks == "seeds":
        if seeds is None:
            raise ValueError(f"method {name!r} needs seeds: a label image with 0 = unmarked and v = label v - 1")
        arguments["seeds"] = seeds
    elif chosen.marks == "markers":
        arguments["markers"] = seeds
    elif chosen.marks == "box-or-scribbles":
        arguments.update(scribbles=seeds, box=box)
    elif seeds is not None or box is not None:
        raise ValueError(f"method {name!r} takes no seeds or box; those are for watershed, random-walker and grabcut")
    result = chosen.function(image, **arguments)
    return result[0] if isinstance(result, tuple) else result
