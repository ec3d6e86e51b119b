"""Declared parameters: every built-in parameter is declared, and the declarations drive validation,
the catalogue and these property tests (strategies generated from the same declarations)."""

import dataclasses
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.core.errors import HarnessError, InvalidParameterError
from harness.core.params import declared, declared_params, param
from harness.core.registry import Registry
from harness.core.spec import Spec
from harness.core.strategies import invalid, spec_strategy, valid
from tests.conftest import synthetic_image
from transforms import TRANSFORMS, Transform, parse_chain
from transforms.catalogue import catalogue, render_catalogue

NAMES = TRANSFORMS.names()
DECLARED = [(name, p) for name in NAMES for p in declared_params(TRANSFORMS.get(name))]
#: One sentence: "The 'quality' parameter of jpeg must be an int in [1, 100]. Got 0 instead."
TEMPLATE = re.compile(r"^The '(\w+)' parameter of (\w+) must be [^\n]+\. Got .+ instead\.$", re.S)


@pytest.mark.parametrize("name", NAMES)
def test_every_parameter_is_declared_and_every_transform_states_its_intensity(name):
    cls = TRANSFORMS.get(name)
    assert cls.name == name
    assert cls.intensity_formula(), f"{name} does not say what its intensity measures"
    for f in dataclasses.fields(cls):
        assert declared(f) is not None, f"{name}.{f.name} is not declared with param()"
    mapped = [k for k, p in declared_params(cls).items() if p.intensity is not None]
    if mapped:  # a declared mapping is what the intensity is computed from, not dead text
        assert cls.intensity is Transform.intensity, f"{name} overrides its declared intensity"


def test_intensity_mappings_compute_and_describe_the_same_formula():
    quality = declared_params(TRANSFORMS.get("jpeg"))["quality"]
    assert quality.intensity(1) == 1.0
    assert quality.intensity(50) == (100 - 50) / 99
    assert quality.intensity.describe("quality", quality) == "(100 - quality) / 99"
    translate = parse_chain("translate(dx=-0.1,dy=0.05)").steps[0]
    assert translate.intensity == max(0.1 / 0.2, 0.05 / 0.2)
    assert TRANSFORMS.get("translate").intensity_formula() == "max(|dx| / 0.2, |dy| / 0.2)"
    assert parse_chain("resize(long_side=64)").steps[0].intensity == 0.0  # scale not given
    assert parse_chain("resize(scale=8)").steps[0].intensity == 1.0


def test_catalogue_shows_each_declared_domain_and_intensity():
    rows = {r["name"]: r for r in catalogue()}
    resize = {p["name"]: p for p in rows["resize"]["params"]}
    assert resize["filter"]["domain"].startswith("one of {'bicubic', 'bilinear', 'box'")
    assert resize["scale"]["domain"] == "a finite number in (0, 8], or None"
    assert resize["upscale"]["domain"] == "one of {False, True}"
    assert rows["crop"]["intensity"] == "1 - keep_area"
    assert all(r["intensity"] for r in rows.values())
    assert all(p["domain"] != "str" for r in rows.values() for p in r["params"])
    table = render_catalogue(markdown=True)
    # Pipes inside cells are escaped: every row has exactly the table's four columns.
    assert all(len(re.split(r"(?<!\\)\|", line)) == 6 for line in table.splitlines())


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=8, suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
@given(data=st.data())
def test_any_declared_value_constructs_round_trips_and_applies(name, data):
    cls = TRANSFORMS.get(name)
    t = cls(**data.draw(spec_strategy(cls)))
    assert Transform.from_dict(t.to_dict()) == t
    assert parse_chain(t.id).steps == (t,)
    assert 0.0 <= t.intensity <= 1.0
    image = synthetic_image(48, 32, seed=1)
    w, h = t.output_size(image.size)
    if w * h <= 200_000:  # a scale=8 resize or a huge thumbnail box is not worth drawing here
        out = t.apply(image, np.random.default_rng(0))
        assert out.size == (w, h)


@pytest.mark.parametrize(("name", "key"), DECLARED, ids=[f"{n}.{k}" for n, k in DECLARED])
@settings(max_examples=10)
@given(data=st.data())
def test_any_refused_value_gets_the_one_line_message(name, key, data):
    cls = TRANSFORMS.get(name)
    value = data.draw(invalid(declared_params(cls)[key]))
    with pytest.raises(InvalidParameterError) as info:
        cls(**{key: value})
    m = TEMPLATE.match(str(info.value))
    assert m, str(info.value)
    assert m.groups() == (key, name)


def test_a_declaration_is_the_whole_story_for_a_new_spec():
    registry: Registry[type[Spec]] = Registry("widget")

    @registry.register("widget")
    @dataclasses.dataclass(frozen=True)
    class Widget(Spec):
        size: float = param(float, 1, min=0, max=4, min_open=True)
        shape: str = param(str, "round", choices=("round", "square"))
        label: str | None = param(str, None, max_length=5)

    assert Widget.name == "widget"
    w = Widget(size=2, label="ok")
    assert isinstance(w.size, float)  # stored as declared
    assert w.size == 2.0
    assert w.id == "widget(label='ok',size=2.0)"
    with pytest.raises(InvalidParameterError, match=r"'size' parameter of widget .* \(0, 4\]"):
        Widget(size=0)
    with pytest.raises(InvalidParameterError, match="single line of 1 to 5 characters"):
        Widget(label="two\nlines")
    with pytest.raises(HarnessError, match="declared as 'gadget'"):

        @registry.register("thing")
        @dataclasses.dataclass(frozen=True)
        class Gadget(Spec):
            name = "gadget"


@given(st.data())
def test_valid_and_invalid_strategies_agree_with_the_check(data):
    p = declared_params(TRANSFORMS.get("crop"))["keep_area"]
    assert p.accepts(data.draw(valid(p)))
    assert not p.accepts(data.draw(invalid(p)))
