"""Every public class of kgen has an `Example:` in its docstring, and every docstring example in kgen runs as
written.

`make test` runs them on PyTorch: the examples are small eager snippets, which torch runs in 27 s where JAX
compiles every op on first use (208 s, the longest file of the JAX lane) and TF takes 90 s. All of them pass on
the three backends; `KGEN_TEST_ANY_BACKEND=1 KERAS_BACKEND=jax pytest tests/test_docstring_examples.py` checks.

An example is the `>>>` / `...` lines of a docstring (class, public function or method), or a ```python fenced
block in it (keras-hub's form), run in a fresh
namespace inside a temporary directory. As with `doctest`, an example sees the names of its own module; and, as
in keras-hub's docs, `keras`, `np` (NumPy) and `kgen` without importing them; everything else it uses it defines
(no `x` or `model` from nowhere). The results
shown in comments are not compared (each module's tests check values), but every line must run.
"""

import doctest
import importlib
import inspect
import pkgutil
import re
import textwrap

import pytest

import kgen

pytestmark = pytest.mark.torch

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


def _own_doc(obj):
    """The object's own docstring (not one inherited from Keras, as `inspect.getdoc` would give)."""
    return inspect.cleandoc(obj.__doc__) if obj.__doc__ else ""


def _documented():
    """{name: (module, docstring)} of every public class, its public methods and every public function of kgen."""
    items = {}
    for module in public_modules():
        for name, value in vars(module).items():
            if name.startswith("_") or getattr(value, "__module__", None) != module.__name__:
                continue
            if inspect.isfunction(value) or inspect.isclass(value):
                items[f"{module.__name__}.{name}"] = (module, _own_doc(value))
            if inspect.isclass(value):
                for attr, member in vars(value).items():
                    if not attr.startswith("_") and inspect.isfunction(member):
                        items[f"{module.__name__}.{name}.{attr}"] = (module, _own_doc(member))
    return items


_FENCED = re.compile(r"```python\n(.*?)```", re.S)


def has_example(doc):
    return ">>>" in doc or "```python" in doc


def examples():
    """{name: (module, source)} of every docstring with `>>>` lines or ```python blocks."""
    found = {}
    for name, (module, doc) in _documented().items():
        lines = [example.source for example in _PARSER.get_examples(doc)
                 if not example.options.get(doctest.SKIP)]  # `# doctest: +SKIP`: needs a download
        lines += [textwrap.dedent(block) for block in _FENCED.findall(doc)]
        if lines:
            found[name] = (module, "\n".join(lines))
    return found


EXAMPLES = examples()


def test_every_public_class_has_an_example():
    """Deprecated aliases (docstring "Deprecated ...") are exempt: they point to the class that has one."""
    missing = sorted(name for name, cls in public_classes().items()
                     if not has_example(_own_doc(cls)) and not _own_doc(cls).startswith("Deprecated"))
    assert not missing, f"public classes without an `Example:` in their docstring: {missing}"


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_docstring_example_runs(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    import keras
    import numpy as np

    module, source = EXAMPLES[name]
    namespace = {**vars(module), "__name__": "__example__", "keras": keras, "np": np, "kgen": kgen}
    exec(compile(source, f"<example of {name}>", "exec"), namespace)
