"""Exception and warning types (public plugin API; they live in :mod:`harness.core.errors`)."""

from harness.core.errors import (
    DatasetError,
    HarnessError,
    HashExcluded,
    ImageLoadError,
    ImageTooLargeError,
    InvalidParameterError,
    SchemaVersionError,
    SuiteError,
    UndefinedMetricWarning,
    UnknownNameError,
)

__all__ = [
    "DatasetError",
    "HarnessError",
    "HashExcluded",
    "ImageLoadError",
    "ImageTooLargeError",
    "InvalidParameterError",
    "SchemaVersionError",
    "SuiteError",
    "UndefinedMetricWarning",
    "UnknownNameError",
]
