"""The import graph of kgen: no cycles (module-level or deferred into functions), and no backend library
imported outside kgen/backend.

Read from the source (ast), so it needs no backend. An edge A → B is any `import` in A, at any depth, that names
kgen module B; `from kgen.pkg import name` points at the submodule `kgen.pkg.name` when there is one, else at
the package `kgen.pkg` itself (its `__init__`). The one exception: imports inside a module-level `__getattr__`
(PEP 562), which kgen uses only to serve deprecated names from their new home for one release.
"""

import ast
import os

import pytest

ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "kgen")
BACKEND_LIBRARIES = {"jax", "jaxlib", "tensorflow", "tf_keras", "torch", "flax", "tensorflow_probability"}

pytestmark = pytest.mark.torch  # no backend involved: once is enough


def modules(root=ROOT):
    """{dotted name: path} of every module under `root` (packages by their `__init__`)."""
    found = {}
    for directory, _, files in os.walk(root):
        for file in files:
            if file.endswith(".py"):
                rel = os.path.relpath(os.path.join(directory, file), os.path.dirname(root))[:-3].split(os.sep)
                if rel[-1] == "__init__":
                    rel = rel[:-1]
                found[".".join(rel)] = os.path.join(directory, file)
    return found


def _package(name, path):
    return name if path.endswith("__init__.py") else name.rpartition(".")[0]


def imports(name, path, known):
    """(kgen modules, other top-level libraries) that module `name` imports anywhere in its body."""
    with open(path, encoding="utf-8") as handle:
        tree = ast.parse(handle.read(), path)
    inner, outer = set(), set()
    shims = {id(n) for f in tree.body if isinstance(f, ast.FunctionDef) and f.name == "__getattr__"
             for n in ast.walk(f)}
    for node in ast.walk(tree):
        if id(node) in shims:
            continue
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = _package(name, path).split(".")
                parts = parts[:len(parts) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        for target in targets:
            if target.split(".")[0] == "kgen":
                while target not in known:  # `import kgen.a.b.name` style: the longest known prefix
                    target = target.rpartition(".")[0]
                if target != name:
                    inner.add(target)
            else:
                outer.add(target.split(".")[0])
    return inner, outer


def graph(root=ROOT):
    known = modules(root)
    return {name: imports(name, path, known) for name, path in known.items()}


def find_cycle(edges):
    """One cycle of the directed graph `edges` ({node: set of nodes}) as a list of nodes, or None."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(edges):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_no_import_cycle_inside_kgen():
    edges = {name: inner for name, (inner, _) in graph().items()}
    # The top-level package imports every family for registration; nothing may import `kgen` itself back.
    back = sorted(name for name, inner in edges.items() if "kgen" in inner)
    assert not back, f"modules importing the top-level package `kgen`: {back}"
    cycle = find_cycle(edges)
    assert cycle is None, "import cycle: " + " → ".join(cycle)


def test_backend_libraries_are_imported_only_in_kgen_backend():
    leaks = {name: sorted(outer & BACKEND_LIBRARIES) for name, (_, outer) in graph().items()
             if not name.startswith("kgen.backend") and outer & BACKEND_LIBRARIES}
    assert not leaks, f"backend libraries imported outside kgen/backend: {leaks}"


def test_the_checks_bite(tmp_path):
    """Negative controls: a two-module cycle through a deferred import, and a stray `import torch`."""
    package = tmp_path / "kgen"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "a.py").write_text("from kgen.sub.b import g\n\ndef f():\n    return g()\n")
    (package / "sub" / "b.py").write_text("def g():\n    from kgen.sub import a\n    import torch\n    return a\n")
    edges = {name: inner for name, (inner, _) in graph(str(package)).items()}
    assert find_cycle(edges) in (["kgen.sub.a", "kgen.sub.b", "kgen.sub.a"], ["kgen.sub.b", "kgen.sub.a", "kgen.sub.b"])
    assert "torch" in graph(str(package))["kgen.sub.b"][1]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
