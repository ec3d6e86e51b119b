"""The plugin's own tests: hash-harness's conformance kit over what the plugin registers."""

import pytest

from harness.algorithms import make_algorithm
from harness.testing import check_algorithm, check_transform
from transforms.base import make_transform


@pytest.mark.parametrize("text", ["example_row_bands", "example_row_bands(bands=24)"])
def test_algorithm_conforms(text):
    check_algorithm(make_algorithm(text))


def test_transform_conforms():
    check_transform(make_transform("example_invert", {}))


def test_policies_over_the_plugin_conform():
    check_algorithm("dihedral(example_row_bands) & phash")
