"""Classical segmentation: numpy in, numpy out, deterministic with a seed, inputs never modified."""

from omniseg.classical.clustering import gaussian_mixture_segmentation, kmeans_segmentation, mean_shift_segmentation
from omniseg.classical.graph import merge_by_mean_colour, normalised_cut
from omniseg.classical.interactive import grabcut_segmentation, random_walker_segmentation
from omniseg.classical.mrf import mrf_segmentation
from omniseg.classical.regions import adjacent_pairs, connected_regions, raster_order
from omniseg.classical.split_merge import split_and_merge
from omniseg.classical.superpixels import felzenszwalb_segmentation, slic_superpixels
from omniseg.classical.images import grey
from omniseg.classical.threshold import multi_otsu_segmentation, otsu_segmentation
from omniseg.classical.watershed import gradient_magnitude, watershed_segmentation

__all__ = ["adjacent_pairs", "connected_regions", "felzenszwalb_segmentation", "gaussian_mixture_segmentation", "gradient_magnitude",
           "grabcut_segmentation", "grey", "kmeans_segmentation", "mean_shift_segmentation", "merge_by_mean_colour", "mrf_segmentation",
           "multi_otsu_segmentation", "normalised_cut", "otsu_segmentation", "random_walker_segmentation", "raster_order",
           "slic_superpixels", "split_and_merge", "watershed_segmentation"]
