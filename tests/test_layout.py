"""The architecture the layout promises: no import cycles (imports inside functions
count), adapters never import gridnet, the core imports neither adapters nor
scikit-learn, and ``import gridnet`` works without scikit-learn."""
import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("gridnet", "adapters")


def _modules():
    """Module name -> path, for every .py file of the two packages."""
    out = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


def _imports(name, path, modules):
    """Every module of ours that ``name`` imports, anywhere in the file (function
    bodies included), and every top-level package it imports from outside."""
    is_pkg = path.name == "__init__.py"
    base = name.split(".") if is_pkg else name.split(".")[:-1]
    ours, outside = set(), set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                prefix = base[:len(base) - node.level + 1]
                mod = ".".join(prefix + ([node.module] if node.module else []))
            else:
                mod = node.module
            # "from pkg import sub" imports pkg.sub when sub is a module of ours
            targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in modules else mod for a in node.names]
        else:
            continue
        for t in targets:
            if t.split(".")[0] in PACKAGES:
                while t not in modules and "." in t:
                    t = t.rsplit(".", 1)[0]
                ours.add(t)
            else:
                outside.add(t.split(".")[0])
    ours.discard(name)
    return ours, outside


def _graph():
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def _cycle(edges):
    """One import cycle as a list of modules, or None."""
    state, stack = {}, []

    def visit(u):
        state[u] = 1
        stack.append(u)
        for v in sorted(edges.get(u, ())):
            if state.get(v) == 1:
                return stack[stack.index(v):] + [v]
            if v not in state:
                found = visit(v)
                if found:
                    return found
        stack.pop()
        state[u] = 2
        return None

    for u in sorted(edges):
        if u not in state:
            found = visit(u)
            if found:
                return found
    return None


def test_the_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_no_import_cycles():
    graph = _graph()
    assert len(graph) > 10 and "adapters.tabular" in graph
    cycle = _cycle({m: ours for m, (ours, _) in graph.items()})
    assert cycle is None, " -> ".join(cycle)


def test_adapters_and_core_stay_apart():
    for name, (ours, outside) in _graph().items():
        if name.startswith("adapters"):
            assert not any(m.startswith("gridnet") for m in ours), (name, ours)
        if name.startswith("gridnet.core"):
            assert all(m.startswith("gridnet.core") for m in ours), (name, ours)
            # numba: the compiled inner loops (gridnet.core.kernels, with a numpy twin each);
            # threads and threadpoolctl (a scikit-learn dependency, declared): the shards
            allowed = {"__future__", "numpy", "scipy"} | (
                {"numba", "os"} if name == "gridnet.core.kernels" else set()) | (
                {"concurrent", "copy", "os", "threadpoolctl"} if name == "gridnet.core.shards"
                else set())
            assert outside <= allowed, (name, outside)
        # the command line, and the model file (which rebuilds a saved pipeline's adapter)
        if name.startswith("gridnet") and not (name.startswith("gridnet.cli")
                                               or name == "gridnet.model_file"):
            assert not any(m.startswith("adapters") for m in ours), (name, ours)


def test_the_file_format_module_imports_nothing_above_it():
    ours, _ = _graph()["gridnet.persist"]
    assert ours == set()


def test_the_core_imports_without_scikit_learn():
    code = textwrap.dedent("""
        import sys, importlib.abc
        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name == "sklearn" or name.startswith("sklearn."):
                    raise ImportError("blocked: " + name)
        sys.meta_path.insert(0, Block())
        import numpy as np
        import gridnet
        from gridnet import Network, Conv2D, MaxPool2D, Flatten, Dense, SoftmaxCrossEntropy, Adam
        net = Network([Conv2D(4, 3, padding="same", activation="relu"), MaxPool2D(2), Flatten(), Dense(3)])
        net.build((1, 8, 8), np.random.default_rng(0))
        x = np.random.default_rng(1).standard_normal((5, 1, 8, 8)).astype(np.float32)
        loss, grad = SoftmaxCrossEntropy()(net.forward(x, training=True), np.array([0, 1, 2, 0, 1]))
        net.backward(grad, input_grad=False)
        Adam(1e-3).step(net.parameters())
        assert "sklearn" not in sys.modules
        try:
            gridnet.GridNetClassifier
        except ImportError as exc:
            print("estimator needs:", exc)
        print("core ok")
    """)
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert "core ok" in out.stdout and "estimator needs: blocked: sklearn" in out.stdout


@pytest.mark.parametrize("name", ["GridNetClassifier", "load", "locality_check", "LocalityReport",
                                  "Network", "Conv2D", "Branches", "Adam"])
def test_public_names_stay(name):
    import gridnet
    assert getattr(gridnet, name) is not None and name in dir(gridnet)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        gridnet.nope


def _private_uses(source, filename="<src>"):
    """Where ``source`` imports a ``_`` name from another module, or reads or writes a
    ``_`` attribute (dunders aside) of an object other than ``self`` or ``cls``, by dot
    or by ``getattr``/``setattr``/``hasattr`` with the name spelled out."""
    def private(name):
        return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))

    def own(node):
        return isinstance(node, ast.Name) and node.id in ("self", "cls")

    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.ImportFrom):
            found += [f"line {node.lineno}: from {'.' * node.level}{node.module or ''} import {a.name}"
                      for a in node.names if private(a.name)]
        elif isinstance(node, ast.Attribute) and private(node.attr) and not own(node.value):
            found.append(f"line {node.lineno}: {ast.unparse(node)}")
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
              and node.func.id in ("getattr", "setattr", "hasattr", "delattr")
              and len(node.args) >= 2 and not own(node.args[0])
              and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str)
              and private(node.args[1].value)):
            found.append(f"line {node.lineno}: {ast.unparse(node)}")
    return sorted(found, key=lambda where: int(where.split(":")[0].split()[1]))


def test_the_private_use_finder_finds_each_kind():
    source = textwrap.dedent("""
        from .signal import _read, read_clip
        from sklearn.utils.validation import _check_sample_weight
        layer._rng = rng
        x = other.kernel._take_cache()
        getattr(layer, "_resolved_init", None)
        self._cache = None
        cls._TABLE
        y = obj.__dict__
        getattr(self, "_lookup", None)
    """)
    assert _private_uses(source) == [
        "line 2: from .signal import _read",
        "line 3: from sklearn.utils.validation import _check_sample_weight",
        "line 4: layer._rng",
        "line 5: other.kernel._take_cache",
        "line 6: getattr(layer, '_resolved_init', None)"]


def test_no_module_uses_another_objects_private_names():
    """Modules meet through public names: a ``_`` name stays inside its module and a
    ``_`` attribute inside its object (tests are exempt)."""
    found = {name: _private_uses(path.read_text(), str(path))
             for name, path in sorted(_modules().items())}
    assert {name: uses for name, uses in found.items() if uses} == {}


def test_the_estimator_and_the_command_line_functions_stay_readable():
    """estimator.py at most 350 lines (its checks, presets and loop live beside it) and no
    function of the command line over 60 (a parser per command, one input reader)."""
    assert len((ROOT / "gridnet" / "estimator.py").read_text().splitlines()) <= 350
    long = [f"{path.name}:{node.name} ({node.end_lineno - node.lineno + 1} lines)"
            for path in sorted((ROOT / "gridnet" / "cli").glob("*.py"))
            for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.FunctionDef) and node.end_lineno - node.lineno + 1 > 60]
    assert long == []


def test_the_text_adapters_grids_keep_the_cores_onehot_contract():
    """The contract lives in the core, which reads it; adapters.OneHotGrid implements
    it without importing gridnet."""
    import numpy as np

    from adapters import OneHotGrid, TextAdapter
    from gridnet.core import onehot_contract_gaps
    grid = TextAdapter(embedding=None, positions=5).fit_transform(["a b c", "b c d e", "a"])
    assert onehot_contract_gaps(grid) == []
    assert onehot_contract_gaps(grid[np.array([2, 0])]) == []
    with_vectors = OneHotGrid(np.array([[1, -1]]), 3, embedding=np.ones((3, 2)),
                              fixed=np.zeros((3, 4)), trained=2)
    assert onehot_contract_gaps(with_vectors) == []

    class Broken(OneHotGrid):
        def toarray(self):
            return super().toarray()[..., ::-1]        # the hot cells in the wrong columns
    assert onehot_contract_gaps(Broken(np.array([[0, -1]]), 3)) == ["toarray"]
    assert onehot_contract_gaps(np.zeros((1, 1, 2, 3))) == [
        "__onehot_grid__", "indices", "width", "toarray", "embedding", "fixed", "trained"]
