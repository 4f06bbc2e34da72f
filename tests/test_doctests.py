"""Every docstring example in the skyseg_tf package runs and prints what it shows."""

import doctest
import importlib
import pkgutil

import pytest

import skyseg_tf

MODULES = sorted(name for _, name, _ in pkgutil.walk_packages(skyseg_tf.__path__, "skyseg_tf."))


def test_the_package_has_modules_with_examples():
    assert "skyseg_tf.models.optimize" in MODULES and len(MODULES) > 20


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples in {name} failed (printed above)"
