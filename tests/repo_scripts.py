"""Load a script of this repository (tools/, benchmarks/, examples/) as a module, for the tests that call its
functions: `from repo_scripts import load_script` (pytest puts tests/ on sys.path for tests/conftest.py)."""

import importlib.util
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_script(path, name=None):
    """A fresh module from `path`, relative to the repository root (e.g. "tools/gpu_check.py"), named `name`
    (default: the file's stem). Each call executes the file again, so module-level state starts clean."""
    name = name or os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
