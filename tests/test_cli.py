import subprocess
import sys

import pytest

from costtrain.cli import main


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "costtrain", *args], capture_output=True,
                          text=True, timeout=300)


def test_help_explains_every_option():
    p = run_cli("run", "--help")
    assert p.returncode == 0
    for opt in ("--method", "--epochs", "--dataset", "--subset", "--model", "--batch-size",
                "--lr", "--threads", "--device", "--out", "--data-dir"):
        assert opt in p.stdout


@pytest.mark.parametrize("args,msg", [
    (["--epochs", "0"], "--epochs: must be >= 1"),
    (["--batch-size", "0"], "--batch-size: must be >= 1"),
    (["--lr", "0"], "--lr: must be a positive number"),
    (["--lr", "abc"], "not a number"),
    (["--model", "resnet"], "invalid choice: 'resnet'"),
    (["--dataset", "imagenet"], "invalid choice: 'imagenet'"),
    (["--data-dir", "/nonexistent/costtrain"], "does not exist"),
])
def test_bad_values_are_clear_errors(args, msg, capsys):
    with pytest.raises(SystemExit) as e:
        main(["run", *args])
    assert e.value.code == 2
    assert msg in capsys.readouterr().err


def test_missing_data_is_a_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("COSTTRAIN_DATA", raising=False)
    assert main(["run", "--dataset", "mnist", "--data-dir", str(tmp_path)]) == 2
    assert "dataset 'mnist' not found" in capsys.readouterr().err


def test_optimizer_choice_reaches_the_trainer(tmp_path):
    from costtrain.result import load_results
    out = tmp_path / "adam.json"
    assert main(["run", "--optimizer", "adam", "--model", "mlp", "--subset", "300",
                 "--no-progress", "--out", str(out)]) == 0
    (r,) = load_results(out)
    assert r.status == "ok" and r.config["optimizer"] == "Adam"
    assert main(["run", "--method", "ps", "--optimizer", "adam", "--subset", "300"]) == 2


def _command_paths(parser, path=()):
    """Every (sub)command of `parser` as the words that name it: (), ("run",), ("class",
    "collect"), ..."""
    import argparse
    yield path
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _command_paths(sub, (*path, name))


def test_every_command_and_subcommand_has_a_working_help(capsys):
    """--help of every command the parser knows (walked, not listed), through the real entry
    points: `costtrain ...`, the torchrun ranks' modules and the handout's."""
    from costtrain import torchrun
    from costtrain.cli import build_parser
    from costtrain.course import handout
    paths = list(_command_paths(build_parser()))
    assert {("run",), ("compare",), ("advise",), ("class", "collect"), ("torchrun",)} <= set(paths)
    failed = {}
    entries = [(" ".join(("costtrain", *p)), lambda p=p: main([*p, "--help"])) for p in paths]
    entries += [(f"python -m costtrain.{m}", lambda m=m: torchrun.main(m.replace("_", "-").replace(
        "parameter-server", "ps"), ["--help"])) for m in ("parameter_server", "local_sgd")]
    entries.append(("python -m costtrain.course.handout", lambda: handout.main(["--help"])))
    for name, call in entries:
        try:
            call()
            failed[name] = "returned instead of exiting after the help"
        except SystemExit as exc:
            out = capsys.readouterr()
            if exc.code != 0 or "usage:" not in out.out:
                failed[name] = f"exit {exc.code}: {out.err[-300:]}"
        except Exception as exc:  # the bug this test is for: a help that crashes
            failed[name] = f"{type(exc).__name__}: {exc}"
    assert not failed, failed


def test_a_rank_torchrun_stopped_after_another_failed_is_named_so_and_the_code_is_the_others():
    """torchrun stops the other ranks with SIGTERM once one failed (rank 0 was ending with the
    same error): the code is the failed rank's own, and rank 0 is not "killed by signal 15"."""
    from types import SimpleNamespace

    from costtrain.torchrun import failed_ranks
    said, code = failed_ranks({1: SimpleNamespace(exitcode=2), 0: SimpleNamespace(exitcode=-15)}, 0)
    assert code == 2 and said.startswith(
        "ranks 0 (stopped by torchrun after another rank failed), 1 (exit 2) of this machine (node 0)")
    said, code = failed_ranks({0: SimpleNamespace(exitcode=-9)}, 1)
    assert code == 3 and said.startswith("rank 0 (killed by signal 9) of this machine (node 1)")
    assert "rank 0 kept the partial result" in said
