"""Visualisation: palettes, overlays and the plots of a run directory."""

from omniseg.viz.overlay import colorize, overlay
from omniseg.viz.plots import plot_confusion, plot_curves, plot_sample

__all__ = ["colorize", "overlay", "plot_confusion", "plot_curves", "plot_sample"]
