"""Classical segmentation: numpy in, numpy out, deterministic with a seed, inputs never modified."""

from omniseg.classical.clustering import connected_regions, gaussian_mixture_segmentation, kmeans_segmentation
from omniseg.classical.mrf import mrf_segmentation
from omniseg.classical.split_merge import split_and_merge
from omniseg.classical.threshold import grey, multi_otsu_segmentation, otsu_segmentation
from omniseg.classical.watershed import gradient_magnitude, watershed_segmentation

__all__ = ["connected_regions", "gaussian_mixture_segmentation", "gradient_magnitude", "grey", "kmeans_segmentation", "mrf_segmentation",
           "multi_otsu_segmentation", "otsu_segmentation", "split_and_merge", "watershed_segmentation"]
