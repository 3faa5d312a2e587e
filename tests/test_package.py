"""The public API is importable from the package top level."""

import importlib

import pytest

import a2dkit

AVAILABLE = [n for n, m in a2dkit._LAZY.items() if importlib.util.find_spec(f"a2dkit.{m}")]


@pytest.mark.parametrize("name", AVAILABLE)
def test_lazy_public_names_resolve(name):
    assert getattr(a2dkit, name).__name__ == name


def test_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no_such_thing"):
        a2dkit.no_such_thing  # noqa: B018
