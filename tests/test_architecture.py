"""The package's shape: imports point down, no circles, no private names across modules, the
CLI reaches every trainer keyword, and the original project's imports keep working."""
from __future__ import annotations

import argparse
import ast
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "costtrain"


def _modules() -> dict[str, ast.Module]:
    return {p.stem: ast.parse(p.read_text(), str(p)) for p in PKG.glob("*.py")}


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


def import_graph(trees: dict[str, ast.Module]) -> dict[str, set[str]]:
    """Module -> modules it imports at import time (top-level relative imports)."""
    mods = set(trees)
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


def test_find_cycle_sees_a_circle_and_accepts_a_tree():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_no_import_circles():
    assert find_cycle(import_graph(_modules())) is None


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


def test_arguments_module_does_not_import_torch():
    # costtrain/__init__ imports torch; load args.py on its own, as a file
    code = ("import importlib.util, sys\n"
            f"spec = importlib.util.spec_from_file_location('a', {str(PKG / 'args.py')!r})\n"
            "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


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


@pytest.mark.parametrize("trainer", ["train_baseline", "train_hogwild", "train_parameter_server",
                                     "train_local_sgd"])
def test_every_trainer_keyword_is_reachable_from_the_cli(trainer):
    import costtrain
    from costtrain.cli import API_TO_CLI, NOT_ON_CLI
    dests = _run_dests()
    params = inspect.signature(getattr(costtrain, trainer)).parameters
    missing = [p for p in params if p not in NOT_ON_CLI and API_TO_CLI.get(p, p) not in dests]
    assert missing == []


def test_the_original_imports_keep_working():
    from costtrain import hogwild, legacy
    assert hogwild.train_model is legacy.train_model
    assert hogwild.chart_losses is legacy.chart_losses
    assert hogwild.log_elapsed_time is legacy.log_elapsed_time
    with pytest.raises(AttributeError):
        hogwild.no_such_name  # noqa: B018


def test_hogwild_reads_top_down():
    """Docstring, then the worker loop, then train_hogwild, before any plumbing."""
    tree = _modules()["hogwild"]
    defs = [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))]
    assert ast.get_docstring(tree) and defs[0] == "worker" and "train_hogwild" in defs[:3]
