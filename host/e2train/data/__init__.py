"""Data: CIFAR-10/100 (restricted unpickler, validation, checksum-verified download), a validation
split, the paper's augmentation on uint8 tensors, a synthetic dataset and the iteration-indexed batches."""

from .augment import CIFAR_MEAN, CIFAR_STD, Normalizer, random_crop_flip
from .batches import BatchSchedule
from .cifar import DATASETS, DatasetError, ImageSet, SafeUnpickler, load_cifar, safe_load, split_validation
from .download import ARCHIVES, download_cifar, extract_verified
from .synthetic import make_synthetic

__all__ = [
    "ARCHIVES", "BatchSchedule", "CIFAR_MEAN", "CIFAR_STD", "DATASETS", "DatasetError", "ImageSet", "Normalizer",
    "SafeUnpickler", "download_cifar", "extract_verified", "load_cifar", "make_synthetic", "random_crop_flip",
    "safe_load", "split_validation",
]
