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
