"""Datasets: the Sample contract, format readers, the synthetic default data and transforms."""

from omniseg.data.formats import FORMATS, load_dataset
from omniseg.data.sample import DatasetInfo, Sample, make_sample
from omniseg.data.synthetic import SyntheticShapes, synthetic_info, write_synthetic

__all__ = [
    "FORMATS",
    "DatasetInfo",
    "Sample",
    "SyntheticShapes",
    "make_sample",
    "load_dataset",
    "synthetic_info",
    "write_synthetic",
]
