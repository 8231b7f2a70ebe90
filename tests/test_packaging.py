"""Keep pyproject.toml, environment.yml and the README's commands in step."""
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _names(reqs):
    return {re.split(r"[<>=!~ \[]", r, maxsplit=1)[0].lower(): r.replace(" ", "") for r in reqs}


def test_environment_yml_matches_pyproject():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = _names(meta["dependencies"] + meta["optional-dependencies"]["dev"])
    env = (ROOT / "environment.yml").read_text()
    pip_part = env.split("- pip:", 1)[1]
    got = _names(re.findall(r"^\s+- ([A-Za-z][^\s#]*)\s*$", pip_part, re.M))
    assert got == wanted


def test_readme_names_the_two_commands():
    readme = (ROOT / "README.md").read_text()
    assert "make run" in readme and "make test" in readme
    make = (ROOT / "Makefile").read_text()
    assert re.search(r"^run:", make, re.M) and re.search(r"^test:", make, re.M)


def test_console_script_declared():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert meta["scripts"]["costtrain"] == "costtrain.cli:main"
