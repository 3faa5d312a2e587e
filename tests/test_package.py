"""The public API is importable from the package top level."""

import importlib

import pytest

import a2dkit

AVAILABLE = [n for n, m in a2dkit._LAZY.items() if importlib.util.find_spec(f"a2dkit.{m}")]


@pytest.mark.parametrize("name", AVAILABLE)
def test_lazy_public_names_resolve(name):
    module = importlib.import_module(f"a2dkit.{a2dkit._LAZY[name]}")
    assert getattr(a2dkit, name) is getattr(module, name)
    assert getattr(getattr(a2dkit, name), "__name__", name) == name  # constants have no __name__


def test_running_a_module_as_a_script_does_not_reimport_it():
    """`python -m a2dkit.convert` must not find a2dkit.convert already imported by the package."""
    import subprocess
    import sys

    code = "import sys, a2dkit; print(any(m in sys.modules for m in ('a2dkit.convert',)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no_such_thing"):
        a2dkit.no_such_thing  # noqa: B018


@pytest.mark.parametrize("name", a2dkit.SUBPACKAGES)
def test_every_subpackage_lists_its_public_names_once_and_they_resolve(name):
    package = getattr(a2dkit, name)  # lazy: imported on first use
    exported = getattr(package, "__all__", [])
    assert package.__doc__, f"a2dkit.{name} has no docstring"
    assert len(exported) == len(set(exported)), f"a2dkit.{name}.__all__ repeats a name"
    missing = [n for n in exported if not hasattr(package, n)]
    assert not missing, f"a2dkit.{name}.__all__ names {missing}, which it does not define"


def test_importing_a2dkit_registers_the_families_and_imports_no_heavy_subpackage():
    import subprocess
    import sys

    code = ("import sys, a2dkit; from transformers import AutoConfig; "
            "AutoConfig.for_model('a2d-qwen3'); "
            "print(sorted(p for p in ('training', 'samplers', 'data', 'grpo', 'tutorial', 'eval') "
            "if 'a2dkit.' + p in sys.modules))")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
