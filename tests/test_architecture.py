"""The package's shape: imports point down, no circles, no private names across modules, the
CLI reaches every trainer keyword, and the original project's imports keep working."""
from __future__ import annotations

import argparse
import ast
import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "costtrain"


def _modules(pkg: Path = PKG) -> dict[str, ast.Module]:
    return {p.stem: ast.parse(p.read_text(), str(p)) for p in pkg.glob("*.py")}


def _relative_imports(tree: ast.Module, mods: set[str], top_level_only: bool):
    """(target module, imported names) of each ``from .x import ...`` in `tree`."""
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            names = [a.name for a in node.names]
            if node.module:
                yield node.module.split(".")[0], names
            else:  # from . import procs
                for n in names:
                    if n in mods:
                        yield n, []


def _package_imports(tree: ast.Module, mods: set[str], package: str):
    """Every package module `tree` imports, where it does it: at the top, inside functions
    (lazy imports, ``__getattr__`` shims), absolutely (``import costtrain.x``) or by
    ``importlib.import_module`` with a literal name."""
    yield from (t for t, _ in _relative_imports(tree, mods, False))
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", ""))
              == "import_module" and node.args and isinstance(node.args[0], ast.Constant)):
            names = [str(node.args[0].value).replace(".", f"{package}.", 1)
                     if str(node.args[0].value).startswith(".") else str(node.args[0].value)]
        for name in names:
            parts = name.split(".")
            if parts[0] == package and len(parts) > 1 and parts[1] in mods:
                yield parts[1]


def import_graph(trees: dict[str, ast.Module], lazy: bool = False,
                 package: str = "costtrain") -> dict[str, set[str]]:
    """Module -> modules it imports: at import time (top-level relative imports), or with
    `lazy` every import anywhere in it (what it may import while it runs)."""
    mods = set(trees)
    if lazy:
        return {m: set(_package_imports(tree, mods, package)) - {m} for m, tree in trees.items()}
    return {m: {t for t, _ in _relative_imports(tree, mods, True) if t in mods and t != m}
            for m, tree in trees.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as a path [a, b, ..., a], or None."""
    state: dict[str, int] = {}

    def visit(u: str, path: list[str]) -> list[str] | None:
        state[u] = 1
        for v in sorted(graph.get(u, ())):
            if state.get(v) == 1:
                return path[path.index(v):] + [v]
            if v not in state and (found := visit(v, path + [v])):
                return found
        state[u] = 2
        return None
    for u in sorted(graph):
        if u not in state and (found := visit(u, [u])):
            return found
    return None


def documented_layers(init: ast.Module, mods: set[str]) -> dict[str, int]:
    """Module -> layer number, from the numbered list in the package docstring."""
    doc = ast.get_docstring(init) or ""
    layers: dict[str, int] = {}
    for item in re.finditer(r"^(\d+)\. (.*?)(?=^\d+\. |^\S|\Z)", doc, re.S | re.M):
        for name in re.findall(r"``(\w+)``", item.group(2)):
            if name in mods:
                layers.setdefault(name, int(item.group(1)))
    return layers


NOT_LAYERED = ("__init__", "__main__")  # the package's import-on-first-use names; python -m


def layer_problems(trees: dict[str, ast.Module], package: str = "costtrain") -> list[str]:
    """What breaks the documented layer order: a module the list does not place, an import
    (lazy ones included) from a module to one in a lower layer (a higher number), a circle."""
    layers = documented_layers(trees["__init__"], set(trees))
    out = [f"{m}: not in the layer list of {package}/__init__.py" for m in sorted(trees)
           if m not in layers and m not in NOT_LAYERED]
    graph = {m: ts for m, ts in import_graph(trees, lazy=True, package=package).items()
             if m not in NOT_LAYERED}
    out += [f"{m} (layer {layers[m]}) imports {t} (layer {layers[t]}), a lower layer"
            for m, ts in sorted(graph.items()) for t in sorted(ts)
            if m in layers and t in layers and layers[t] > layers[m]]
    cycle = find_cycle(graph)
    if cycle:
        out.append("import circle (lazy imports included): " + " -> ".join(cycle))
    return out


def method_if_chains(trees: dict[str, ast.Module], names: set[str],
                     registry: str = "methods") -> list[str]:
    """Comparisons with a method's name outside the registry module: ``method == "hogwild"``,
    ``method in ("ps", "local-sgd")``, ``method.startswith("ps-")``. The registry's rows say
    what differs between methods; every other module asks a row."""
    def literals(node: ast.AST) -> list[str]:
        elts = node.elts if isinstance(node, (ast.Tuple, ast.List, ast.Set)) else [node]
        return [e.value for e in elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
    out = []
    for m, tree in sorted(trees.items()):
        if m == registry:
            continue
        for node in ast.walk(tree):
            hits: list[str] = []
            if isinstance(node, ast.Compare):
                hits = [s for side in [node.left, *node.comparators] for s in literals(side)
                        if s in names]
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                  and node.func.attr in ("startswith", "endswith") and node.args):
                hits = [s for s in literals(node.args[0])
                        if s and any(n.startswith(s) for n in names)]
            if hits:
                out.append(f"{m}.py:{node.lineno}: compares with method name(s) {hits}")
    return out


def _method_names() -> set[str]:
    from costtrain import methods
    return {*methods.NAMES, *methods.RESULT_METHODS}


def test_find_cycle_sees_a_circle_and_accepts_a_tree():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_no_import_circles():
    assert find_cycle(import_graph(_modules())) is None


# (from, to): why the upward import is still there. A stale entry fails the test.
KNOWN_UPWARD = {("gloo", "report"): "torchrun_main prints the rank's summary line; issue 20's "
                                    "one gloo launcher is where it should move to a front end"}


def test_imports_follow_the_documented_layers_lazy_imports_included():
    problems = layer_problems(_modules())
    known = [f"{a} (layer 3) imports {b} (layer 4), a lower layer" for a, b in KNOWN_UPWARD]
    assert [p for p in problems if p not in known] == []
    assert [k for k in known if k not in problems] == []  # fixed: remove it from KNOWN_UPWARD


def test_no_module_but_the_registry_tells_methods_apart_by_name():
    assert method_if_chains(_modules(), _method_names()) == []


FAKE_INIT = '''"""A fake package.

1. low: ``low``, ``registry``;
2. high: ``high``.
"""
'''


def _fake_package(tmp_path: Path, files: dict[str, str]) -> dict[str, ast.Module]:
    pkg = tmp_path / "fakepkg"
    pkg.mkdir()
    for name, text in {"__init__": FAKE_INIT, "registry": "", **files}.items():
        (pkg / f"{name}.py").write_text(text)
    return _modules(pkg)


def test_the_layer_check_fails_on_a_planted_upward_import(tmp_path):
    ok = _fake_package(tmp_path, {"low": "X = 1\n", "high": "from .low import X\n"})
    assert layer_problems(ok, "fakepkg") == []
    (tmp_path / "up").mkdir()
    lazy_up = "def f():\n    from .high import Y\n    return Y\n"  # inside a function
    bad = _fake_package(tmp_path / "up", {"low": lazy_up, "high": "Y = 2\n"})
    assert layer_problems(bad, "fakepkg") == ["low (layer 1) imports high (layer 2), a lower layer"]
    (tmp_path / "shim").mkdir()
    shim = ("def __getattr__(name):\n    import importlib\n"
            "    return getattr(importlib.import_module('.high', __package__), name)\n")
    bad = _fake_package(tmp_path / "shim", {"low": shim, "high": "from . import low\n"})
    problems = layer_problems(bad, "fakepkg")
    assert "low (layer 1) imports high (layer 2), a lower layer" in problems
    assert any("circle" in p for p in problems)
    (tmp_path / "new").mkdir()
    unplaced = _fake_package(tmp_path / "new", {"low": "", "high": "", "extra": ""})
    assert layer_problems(unplaced, "fakepkg") == [
        "extra: not in the layer list of fakepkg/__init__.py"]


def test_the_method_check_fails_on_a_planted_if_chain(tmp_path):
    names = {"baseline", "hogwild", "ps", "ps-sync", "local-sgd"}
    chain = ("def kwargs(method, args):\n"
             "    if method == 'hogwild':\n        return {'processes': args.processes}\n"
             "    if method in ('ps', 'local-sgd'):\n        return {'workers': args.workers}\n"
             "    if method.startswith('ps-'):\n        return {}\n    return {}\n")
    trees = _fake_package(tmp_path, {"low": "", "high": chain,
                                     "registry": "ROWS = {'hogwild': 1}\nOK = 'ps' == 'ps'\n"})
    assert method_if_chains(trees, names, "registry") == [
        "high.py:2: compares with method name(s) ['hogwild']",
        "high.py:4: compares with method name(s) ['ps', 'local-sgd']",
        "high.py:6: compares with method name(s) ['ps-']"]
    clean = {"low": "def f(row):\n    return row.levers and 'x'.startswith('--')\n"}
    (tmp_path / "clean").mkdir()
    assert method_if_chains(_fake_package(tmp_path / "clean", clean), names, "registry") == []


def test_nothing_imports_the_cli():
    trees = _modules()
    offenders = [m for m, tree in trees.items() if m not in ("cli", "__main__")
                 for t, _ in _relative_imports(tree, set(trees), False) if t == "cli"]
    assert offenders == []


def test_no_private_names_across_modules():
    trees = _modules()
    private = [(m, t, n) for m, tree in trees.items()
               for t, names in _relative_imports(tree, set(trees), False)
               for n in names if n.startswith("_") and t != m]
    assert private == []


def test_the_package_the_registry_and_the_cli_help_do_not_import_torch():
    code = ("import sys, costtrain, costtrain.args, costtrain.methods, costtrain.cli\n"
            "for argv in (['--help'], ['run', '--help'], ['run', '--method', 'nope']):\n"
            "    try:\n        costtrain.cli.main(argv)\n    except SystemExit:\n        pass\n"
            "print('torch' in sys.modules, file=sys.stderr)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=ROOT)
    assert "--method" in out.stdout and out.stderr.strip().splitlines()[-1] == "False"


def test_argument_choices_match_the_registries():
    from costtrain import args, engine, hogwild, ps_ranks
    from costtrain.data import DATASETS
    from costtrain.models import MODELS
    assert set(args.DATASET_NAMES) == set(DATASETS)
    assert set(args.MODEL_NAMES) == set(MODELS)
    assert set(args.PS_MODES) == set(ps_ranks.MODES)
    assert set(args.OPTIMIZER_NAMES) == set(engine.OPTIMIZERS)
    assert set(args.PIPELINE_NAMES) == set(engine.PIPELINES)
    assert set(args.SHARDING_NAMES) == set(hogwild.SHARDINGS)
    from costtrain.predict import TRAINERS
    assert set(args.METHOD_NAMES) == set(TRAINERS)


def _run_dests() -> set[str]:
    from costtrain.cli import build_parser
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {a.dest for a in sub.choices["run"]._actions}


def _registry_names() -> list[str]:
    from costtrain import methods
    return list(methods.NAMES)


@pytest.mark.parametrize("method", _registry_names())
def test_every_trainer_keyword_is_reachable_from_the_cli(method):
    from costtrain import methods
    trainer = methods.get(method).trainer.split(":")[1]
    import costtrain
    from costtrain.cli import API_TO_CLI, NOT_ON_CLI
    dests = _run_dests()
    params = inspect.signature(getattr(costtrain, trainer)).parameters
    missing = [p for p in params if p not in NOT_ON_CLI and API_TO_CLI.get(p, p) not in dests]
    assert missing == []


@pytest.mark.parametrize("method", _registry_names())
def test_each_registry_row_is_wired_to_its_trainer_and_options(method):
    """The row's trainer is the package's ``train_*`` name, its option groups exist, and what
    ``costtrain run --method NAME`` passes are keywords the trainer takes."""
    import costtrain
    from costtrain import args, cli, methods
    row = methods.get(method)
    fn = row.load()
    assert getattr(costtrain, fn.__name__) is fn and fn.__name__ in costtrain.__all__
    assert all(callable(getattr(args, name, None)) for name in row.options)
    parsed = cli.build_parser().parse_args(["run", "--method", method])
    params = inspect.signature(fn).parameters
    assert set(cli.run_kwargs(parsed)) - set(params) == set()
    assert set(row.probe_defaults(10.0)) <= set(params)
    for _, kw in row.probes(4, True, 2) + row.compare(2, 4):
        assert set(kw) <= set(params) | {"batch_size"}
    assert all(methods.get(r) is row for r in row.result_methods)


def test_the_original_imports_keep_working():
    from costtrain import hogwild, legacy
    assert hogwild.train_model is legacy.train_model
    assert hogwild.chart_losses is legacy.chart_losses
    assert hogwild.log_elapsed_time is legacy.log_elapsed_time
    with pytest.raises(AttributeError):
        hogwild.no_such_name  # noqa: B018


def test_hogwild_reads_top_down():
    """Docstring, then the worker loop, then train_hogwild, before any plumbing."""
    tree = _modules()["hogwild_loop"]
    defs = [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))]
    assert ast.get_docstring(tree) and defs[0] == "worker" and "train_hogwild" in defs[:3]
