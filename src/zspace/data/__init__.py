"""Datasets: the registry of MNIST-style datasets, fetching and verifying them, and loading them
(or a user's `.npz` file) as tensors.

    from zspace.data import load_dataset
    data = load_dataset("mnist", limit=1000)   # uint8 (N, 28, 28) images, int64 labels
"""

from zspace.data.datasets import Dataset, load_dataset
from zspace.data.download import dataset_status, fetch_dataset
from zspace.data.registry import DATASETS, DatasetSpec, FileSpec, resolve_data_dir

__all__ = [
    "DATASETS",
    "Dataset",
    "DatasetSpec",
    "FileSpec",
    "dataset_status",
    "fetch_dataset",
    "load_dataset",
    "resolve_data_dir",
]
