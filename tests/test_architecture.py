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
    """Every module of the package by dotted name below it: ``cli``, ``run.procs``, and a
    sub-package's ``__init__`` as ``run``; the package's own ``__init__`` as ``__init__``."""
    out = {}
    for p in sorted(pkg.rglob("*.py")):
        parts = p.relative_to(pkg).with_suffix("").parts
        if len(parts) > 1 and parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = ast.parse(p.read_text(), str(p))
    return out


def _is_package(name: str, mods: set[str]) -> bool:
    return name == "__init__" or any(m.startswith(name + ".") for m in mods)


def _base(module: str, level: int, mods: set[str]) -> str:
    """The package a ``from <level dots> import`` in `module` starts from ('' = the top)."""
    pkg = module if _is_package(module, mods) else module.rpartition(".")[0]
    if module == "__init__":
        pkg = ""
    for _ in range(level - 1):
        pkg = pkg.rpartition(".")[0]
    return pkg


def _resolve(base: str, name: str | None, mods: set[str]) -> str | None:
    """The module ``base.name`` names, or its package when it is an attribute of one."""
    full = ".".join(x for x in (base, name) if x)
    while full and full not in mods:
        full = full.rpartition(".")[0]
    return full or ("__init__" if not base and not name else None)


def _relative_imports(tree: ast.Module, mods: set[str], top_level_only: bool,
                      module: str = "__init__"):
    """(target module, imported names) of each relative ``from . import`` in `tree` (in
    `module`): ``from ..run import procs`` targets ``run.procs``; ``from ..errors import X``
    targets ``errors``."""
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.level >= 1:
            base = _base(module, node.level, mods)
            names = [a.name for a in node.names]
            prefix = ".".join(x for x in (base, node.module) if x)
            subs = [n for n in names if (f"{prefix}.{n}" if prefix else n) in mods]
            for n in subs:
                yield f"{prefix}.{n}" if prefix else n, []
            rest = [n for n in names if n not in subs]
            if rest:
                target = _resolve(base, node.module, mods)
                if target:
                    yield target, rest


def _literal_imports(tree: ast.Module, mods: set[str], package: str, module: str):
    """Absolute imports (``import costtrain.x``, ``from costtrain.x import y``) and
    ``importlib.import_module`` with a literal name, relative or absolute."""
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", ""))
              == "import_module" and node.args and isinstance(node.args[0], ast.Constant)):
            name = str(node.args[0].value)
            if name.startswith("."):
                level = len(name) - len(name.lstrip("."))
                base = _base(module, level, mods)
                name = ".".join(x for x in (package, base, name.lstrip(".")) if x)
            names = [name]
        for name in names:
            parts = name.split(".")
            if parts[0] == package and len(parts) > 1:
                target = _resolve("", ".".join(parts[1:]), mods)
                if target:
                    yield target


def import_graph(trees: dict[str, ast.Module], lazy: bool = False,
                 package: str = "costtrain") -> dict[str, set[str]]:
    """Module -> modules it imports: at import time (top-level relative imports), or with
    `lazy` every import anywhere in it (inside functions, absolute, ``importlib`` literals)."""
    mods = set(trees)
    graph = {}
    for m, tree in trees.items():
        found = {t for t, _ in _relative_imports(tree, mods, not lazy, m)}
        if lazy:
            found |= set(_literal_imports(tree, mods, package, m))
        graph[m] = found - {m}
    return graph


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


def documented_layers(init: ast.Module, names: set[str]) -> dict[str, int]:
    """Top-level module or sub-package -> layer number, from the numbered list in the package
    docstring."""
    doc = ast.get_docstring(init) or ""
    layers: dict[str, int] = {}
    for item in re.finditer(r"^(\d+)\. (.*?)(?=^\d+\. |^\S|\Z)", doc, re.S | re.M):
        for name in re.findall(r"``(\w+)``", item.group(2)):
            if name in names:
                layers.setdefault(name, int(item.group(1)))
    return layers


NOT_LAYERED = ("__init__", "__main__")  # the package's import-on-first-use names; python -m


def _unit(module: str) -> str:
    """What the layer list places: a top-level module, or the sub-package a module is in."""
    return module.split(".")[0]


def layer_problems(trees: dict[str, ast.Module], package: str = "costtrain") -> list[str]:
    """What breaks the documented layer order: a module or sub-package the list does not
    place, an import (lazy and ``importlib`` ones included) into a lower layer (a higher
    number), a circle between modules, a sub-package without a docstring saying what it may
    import."""
    units = {_unit(m) for m in trees} - set(NOT_LAYERED)
    layers = documented_layers(trees["__init__"], units)
    out = [f"{u}: not in the layer list of {package}/__init__.py" for u in sorted(units)
           if u not in layers]
    out += [f"{u}: its docstring does not say what it may import" for u in sorted(units)
            if u in trees and _is_package(u, set(trees))
            and "May import" not in (ast.get_docstring(trees[u]) or "")]
    graph = {m: ts for m, ts in import_graph(trees, lazy=True, package=package).items()
             if m not in NOT_LAYERED}
    for m, ts in sorted(graph.items()):
        for t in sorted(ts):
            a, b = layers.get(_unit(m)), layers.get(_unit(t))
            if a is not None and b is not None and b > a:
                out.append(f"{m} (layer {a}) imports {t} (layer {b}), a lower layer")
    cycle = find_cycle({m: {t for t in ts if t not in NOT_LAYERED} for m, ts in graph.items()})
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


def test_imports_follow_the_documented_layers_lazy_imports_included():
    assert layer_problems(_modules()) == []


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


SUB_INIT = '''"""A fake package with sub-packages.

1. records: ``low``, ``registry``;
2. ``base``: the machinery;
3. ``top``: what uses it.
"""
'''


def _fake_tree(tmp_path: Path, files: dict[str, str]) -> dict[str, ast.Module]:
    pkg = tmp_path / "fakepkg"
    files = {"__init__.py": SUB_INIT, "registry.py": "", "low.py": "",
             "base/__init__.py": '"""Machinery. May import: the records."""\n',
             "top/__init__.py": '"""Users. May import: base and the records."""\n', **files}
    for name, text in files.items():
        (pkg / name).parent.mkdir(parents=True, exist_ok=True)
        (pkg / name).write_text(text)
    return _modules(pkg)


def test_the_layer_check_follows_imports_into_and_between_sub_packages(tmp_path):
    ok = {"base/engine.py": "from ..low import X\nfrom . import pool\n", "base/pool.py": "",
          "top/user.py": "from ..base.engine import run\nfrom ..base import pool\n"}
    assert layer_problems(_fake_tree(tmp_path / "ok", ok), "fakepkg") == []
    planted = {  # each one reaches up from base (layer 2) into top (layer 3)
        "relative": "from ..top.user import go\n",
        "package": "from ..top import user\n",
        "lazy": "def f():\n    from ..top import user\n    return user\n",
        "absolute": "import fakepkg.top.user\n",
        "importlib": "import importlib\nM = importlib.import_module('fakepkg.top.user')\n",
        "relative importlib": ("import importlib\n"
                               "M = importlib.import_module('..top.user', __package__)\n")}
    for how, text in planted.items():
        trees = _fake_tree(tmp_path / how.replace(" ", "_"),
                           {"base/engine.py": text, "top/user.py": ""})
        assert layer_problems(trees, "fakepkg") == [
            "base.engine (layer 2) imports top.user (layer 3), a lower layer"], how
    silent = _fake_tree(tmp_path / "silent", {"base/__init__.py": '"""Machinery."""\n',
                                              "base/pool.py": ""})
    assert layer_problems(silent, "fakepkg") == [
        "base: its docstring does not say what it may import"]
    stray = _fake_tree(tmp_path / "stray", {"extra/__init__.py": '"""May import: all."""\n'})
    assert layer_problems(stray, "fakepkg") == [
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


FRONT = 7  # the front ends' layer in costtrain/__init__.py


def test_nothing_below_the_front_ends_imports_one():
    trees = _modules()
    layers = documented_layers(trees["__init__"], {_unit(m) for m in trees})
    front = {u for u, n in layers.items() if n == FRONT}
    assert {"cli", "torchrun", "parameter_server", "local_sgd", "hogwild"} <= front
    offenders = [(m, t) for m, ts in import_graph(trees, lazy=True).items()
                 if _unit(m) not in front and m not in NOT_LAYERED
                 for t in ts if _unit(t) in front]
    assert offenders == []


def test_no_private_names_across_modules():
    trees = _modules()
    private = [(m, t, n) for m, tree in trees.items()
               for t, names in _relative_imports(tree, set(trees), False, m)
               for n in names if n.startswith("_") and t != m]
    assert private == []


# Modules outside train/ allowed to reach a trainer's module, and why (the registry names
# them as strings; everything else asks the registry: methods.get(name).load()).
TRAINER_READERS = {
    "hogwild": "the original project's import path, `from costtrain.hogwild import train_model`",
    "course": "the course's façade: lessons show the loops (worker, work, serve, train_rank)",
}


def _module_strings(tree: ast.Module) -> set[str]:
    """Dotted module names a module mentions in string constants (``"costtrain.x.y"`` or
    ``"costtrain.x.y:function"``): what it may import by name at run time."""
    return {node.value.split(":")[0] for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and re.fullmatch(r"costtrain(\.\w+)+(:\w+)?", node.value)}


def test_no_module_outside_train_and_the_registry_names_a_trainer():
    from costtrain import methods
    trainers = {f.split(":")[0].removeprefix("costtrain.") for row in methods.METHODS.values()
                for f in (row.trainer, row.torchrun) if f}
    assert {"train.baseline", "train.hogwild", "train.parameter_server"} <= trainers
    trees = _modules()
    graph = import_graph(trees, lazy=True)
    offenders = []
    for m, tree in trees.items():
        if _unit(m) in ("train", "methods", *TRAINER_READERS):
            continue
        named = graph[m] | {s.removeprefix("costtrain.") for s in _module_strings(tree)}
        offenders += [(m, t) for t in sorted(named & trainers)]
    assert offenders == []


def test_the_hogwild_trainer_reaches_the_optimizer_step_in_three_hops():
    """train_hogwild -> train_source -> (the pool runs) worker -> the optimizer step."""
    tree = _modules()["train.hogwild"]
    fns = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}

    def calls(fn: str) -> set[str]:
        out = set()
        for node in ast.walk(fns[fn]):
            if isinstance(node, ast.Call):
                out |= {getattr(node.func, "id", getattr(node.func, "attr", ""))}
                out |= {a.id for a in node.args if isinstance(a, ast.Name)}  # run(worker, ...)
        return out
    assert "train_source" in calls("train_hogwild")
    assert "worker" in calls("train_source")
    assert "step" in calls("worker")


def test_the_package_the_registry_and_the_cli_help_do_not_import_torch():
    code = ("import sys, costtrain, costtrain.args, costtrain.methods, costtrain.cli\n"
            "for argv in (['--help'], ['run', '--help'], ['run', '--method', 'nope']):\n"
            "    try:\n        costtrain.cli.main(argv)\n    except SystemExit:\n        pass\n"
            "print('torch' in sys.modules, file=sys.stderr)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=ROOT)
    assert "--method" in out.stdout and out.stderr.strip().splitlines()[-1] == "False"


def test_argument_choices_match_the_registries():
    from costtrain import args, hogwild
    from costtrain.data.datasets import DATASETS
    from costtrain.data.models import MODELS
    from costtrain.train import engine, ps_ranks
    assert set(args.DATASET_NAMES) == set(DATASETS)
    assert set(args.MODEL_NAMES) == set(MODELS)
    assert set(args.PS_MODES) == set(ps_ranks.MODES)
    assert set(args.OPTIMIZER_NAMES) == set(engine.OPTIMIZERS)
    assert set(args.PIPELINE_NAMES) == set(engine.PIPELINES)
    assert set(args.SHARDING_NAMES) == set(hogwild.SHARDINGS)
    from costtrain.advice.predict import TRAINERS
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
    from costtrain import hogwild
    from costtrain.train import legacy
    assert hogwild.train_model is legacy.train_model
    assert hogwild.chart_losses is legacy.chart_losses
    assert hogwild.log_elapsed_time is legacy.log_elapsed_time
    with pytest.raises(AttributeError):
        hogwild.no_such_name  # noqa: B018


def test_hogwild_reads_top_down():
    """Docstring, then the worker loop, then train_hogwild, before any plumbing."""
    tree = _modules()["train.hogwild"]
    defs = [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))]
    assert ast.get_docstring(tree) and defs[0] == "worker" and "train_hogwild" in defs[:3]


DOC_IMPORT = re.compile(r"^\s*(?:>>> )?from (costtrain[\w.]*) import \(?([\w, ]+(?: as \w+)?)\)?",
                        re.M)
DOC_MODULE = re.compile(r"(?:python -m|-m) (costtrain[\w.]*)")


def _doc_texts() -> dict[str, str]:
    return {str(p.relative_to(ROOT)): p.read_text() for p in
            [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]}


def test_every_public_name_the_readme_and_docs_show_imports():
    """Every `from costtrain... import name` the README and docs show (code and prose) imports,
    every `python -m costtrain...` they name is a module that runs as a program."""
    import importlib
    seen = 0
    for doc, text in _doc_texts().items():
        for module, names in DOC_IMPORT.findall(text):
            mod = importlib.import_module(module)
            for name in (n.split(" as ")[0].strip() for n in names.split(",") if n.strip()):
                assert hasattr(mod, name) or importlib.util.find_spec(f"{module}.{name}"), \
                    f"{doc}: from {module} import {name} fails"
                seen += 1
        for module in set(DOC_MODULE.findall(text)):
            spec = importlib.util.find_spec(module)
            assert spec is not None, f"{doc}: python -m {module}: no such module"
            src = Path(spec.origin).read_text() if spec.origin else ""
            assert "__main__" in src, f"{doc}: python -m {module} does nothing (no __main__ guard)"
    assert seen >= 5  # the docs do show the public API


def test_the_torchrun_entry_points_answer_help():
    for module in ("costtrain.parameter_server", "costtrain.local_sgd"):
        out = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True,
                             text=True, timeout=120, cwd=ROOT)
        assert out.returncode == 0 and f"python -m {module}" in out.stdout, out.stderr
