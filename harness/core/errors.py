"""Exception and warning types shared by every part of the harness."""

from __future__ import annotations


class HarnessError(Exception):
    """Base class for errors the harness reports to a user without a traceback."""


class InvalidParameterError(HarnessError, ValueError, TypeError):
    """A user-supplied parameter is out of range or of the wrong type.

    Subclasses both ``ValueError`` and ``TypeError`` (as scikit-learn does), so callers can
    catch either.
    """


class SuiteError(HarnessError):
    """A suite file cannot be read or does not describe a valid run."""


class UnknownNameError(HarnessError, KeyError):
    """A name was looked up in a registry that does not hold it."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ImageLoadError(HarnessError):
    """An image file could not be decoded into pixels."""


class ImageTooLargeError(ImageLoadError):
    """Pillow refused an image as a possible decompression bomb (more pixels than it allows).

    A dataset can declare that such images are excluded with the reason rather than counted as
    failures (see ``Dataset.oversize``).
    """


class DatasetError(HarnessError):
    """A dataset cannot be opened or fails verification against its manifest."""


class SchemaVersionError(HarnessError):
    """A results file was written by a newer (or unknown) schema."""


class UndefinedMetricWarning(UserWarning):
    """A metric has no defined value (for example a rate over zero events)."""


class HashExcluded(HarnessError):
    """An algorithm declined to hash an image by its own rule (e.g. PDQ quality below the gate).

    Not a failure: the run records it as a counted exclusion, and the image's other hashes and
    the other algorithms are unaffected.
    """
