"""Data sets with a fixed, seeded train / calibration / test split. Knows no model."""
from aqsvit.data.bundle import DataBundle, iter_batches, take
from aqsvit.data.sources import DATASETS, load_dataset, register_dataset

__all__ = ["DATASETS", "DataBundle", "iter_batches", "load_dataset", "register_dataset", "take"]
