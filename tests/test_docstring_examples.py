"""Every public class of kgen has an `Example:` in its docstring, and every docstring example in kgen runs as
written, on JAX.

An example is the `>>>` / `...` lines of a docstring (class, public function or method), run in a fresh
namespace inside a temporary directory. As with `doctest`, an example sees the names of its own module; and, as
in keras-hub's docs, `keras`, `np` (NumPy) and `kgen` without importing them; everything else it uses it defines
(no `x` or `model` from nowhere). The results
shown in comments are not compared (each module's tests check values), but every line must run.
"""

import doctest
import importlib
import inspect
import os
import pkgutil

import pytest

import kgen

pytestmark = pytest.mark.jax

_PARSER = doctest.DocTestParser()


def public_modules():
    for info in pkgutil.walk_packages(kgen.__path__, "kgen."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            yield importlib.import_module(info.name)


def public_classes():
    """{qualified name: class} of the public classes defined in kgen's public modules."""
    found = {}
    for module in public_modules():
        for name, value in vars(module).items():
            if not name.startswith("_") and inspect.isclass(value) and value.__module__ == module.__name__:
                found[f"{module.__name__}.{name}"] = value
    return found


def _documented():
    """{name: (module, docstring)} of every public class, its public methods and every public function of kgen."""
    items = {}
    for module in public_modules():
        for name, value in vars(module).items():
            if name.startswith("_") or getattr(value, "__module__", None) != module.__name__:
                continue
            if inspect.isfunction(value) or inspect.isclass(value):
                items[f"{module.__name__}.{name}"] = (module, inspect.getdoc(value) or "")
            if inspect.isclass(value):
                for attr, member in vars(value).items():
                    if not attr.startswith("_") and inspect.isfunction(member):
                        items[f"{module.__name__}.{name}.{attr}"] = (module, inspect.getdoc(member) or "")
    return items


def examples():
    """{name: (module, source)} of every docstring with `>>>` lines."""
    found = {}
    for name, (module, doc) in _documented().items():
        lines = [example.source for example in _PARSER.get_examples(doc)
                 if not example.options.get(doctest.SKIP)]  # `# doctest: +SKIP`: needs a download
        if lines:
            found[name] = (module, "".join(lines))
    return found


EXAMPLES = examples()


def test_every_public_class_has_an_example():
    missing = sorted(name for name, cls in public_classes().items() if ">>>" not in (inspect.getdoc(cls) or ""))
    assert not missing, f"public classes without an `Example:` in their docstring: {missing}"


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_docstring_example_runs(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    import keras
    import numpy as np

    module, source = EXAMPLES[name]
    namespace = {**vars(module), "__name__": "__example__", "keras": keras, "np": np, "kgen": kgen}
    exec(compile(source, f"<example of {name}>", "exec"), namespace)
