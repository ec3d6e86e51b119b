from types import SimpleNamespace

import pytest

from harness.core import registry as registry_module
from harness.core.errors import HarnessError, UnknownNameError
from harness.core.registry import Registry


def test_register_lookup_aliases_and_suggestions():
    reg: Registry[int] = Registry("widget")
    reg.register("sprocket", "spr")(1)
    reg.register("gear")(2)
    assert reg.get("spr") == 1
    assert reg.canonical("spr") == "sprocket"
    assert reg.names() == ["gear", "sprocket"]
    assert reg.aliases_of("sprocket") == ["spr"]
    assert "gear" in reg
    assert len(reg) == 2
    with pytest.raises(UnknownNameError, match="Did you mean 'sprocket'"):
        reg.get("sprockt")
    with pytest.raises(UnknownNameError, match="Known widgets: gear, sprocket"):
        reg.get("zzz")
    with pytest.raises(HarnessError, match="registered twice"):
        reg.register("gear")(3)


def test_entry_point_plugins_load_on_first_lookup(monkeypatch):
    reg: Registry[int] = Registry("widget", "test.widgets")
    loaded = []

    def load():
        loaded.append(True)
        reg.register("plugin_widget")(7)

    fake = [SimpleNamespace(name="p", value="pkg:mod", load=load)]
    monkeypatch.setattr(registry_module, "entry_points", lambda group: fake)
    assert not loaded
    assert reg.get("plugin_widget") == 7
    reg.names()
    assert loaded == [True]  # loaded once


def test_broken_plugin_reports_which(monkeypatch):
    reg: Registry[int] = Registry("widget", "test.widgets")

    def load():
        raise ImportError("no module named x")

    fake = [SimpleNamespace(name="bad", value="bad:mod", load=load)]
    monkeypatch.setattr(registry_module, "entry_points", lambda group: fake)
    with pytest.raises(HarnessError, match="Could not load widget plugin 'bad'"):
        reg.names()
