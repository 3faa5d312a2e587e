"""Packaging invariants: pyproject.toml declares ranges, constraints.txt pins the exact versions
CI uses (inside those ranges), environment.yml pins the same; make installs into a venv."""

import os
import re
import subprocess
from pathlib import Path

import tomllib
import yaml
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]


def _pyproject_requirements() -> dict[str, Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        reqs += [r for r in extra if not r.startswith("a2dkit")]
    return {(r := Requirement(text)).name.lower(): r for text in reqs}


def _pins(lines) -> dict[str, str]:
    """``name==version`` lines -> {name: version}; anything else is an error."""
    pins = {}
    for line in lines:
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)==([A-Za-z0-9_.+-]+)", line.strip())
        assert match, f"not an exact pin: {line!r}"
        pins[match[1].lower()] = match[2]
    return pins


def _constraints() -> dict[str, str]:
    lines = (ROOT / "constraints.txt").read_text().splitlines()
    return _pins(line for line in lines if line.strip() and not line.startswith("#"))


def _environment_pins() -> dict[str, str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert "-e .[dev]" in pip
    return _pins(r for r in pip if not r.startswith("-e"))


def test_pyproject_declares_ranges_not_exact_pins():
    exact = [str(r) for r in _pyproject_requirements().values() if "==" in str(r.specifier)]
    assert not exact, f"exact pins belong in constraints.txt: {exact}"
    unbounded = [str(r) for r in _pyproject_requirements().values()
                 if not any(s.operator == "<" for s in r.specifier)]  # fmt: skip
    assert not unbounded, f"give each dependency an upper bound (next major): {unbounded}"


def test_constraints_pin_every_direct_dependency_inside_its_range():
    declared, pins = _pyproject_requirements(), _constraints()
    assert set(pins) == set(declared)
    outside = {n: v for n, v in pins.items() if not declared[n].specifier.contains(v, True)}
    assert not outside, f"pins outside pyproject's ranges: {outside}"
    # negative control: the same check rejects a version outside a range
    assert not declared["transformers"].specifier.contains("6.0.0")


def test_environment_yml_pins_equal_the_constraints():
    env, pins = _environment_pins(), _constraints()
    assert set(env) == set(pins) - {"deepspeed"}
    assert {n: v for n, v in env.items() if pins[n] != v} == {}


def test_make_installs_into_the_project_venv_and_python_can_be_overridden():
    def dry(*args: str) -> str:
        cmd = ["make", "-n", "-B", *args]
        # a parent `make PYTHON=...` passes its variables down (MAKEFLAGS, MAKEOVERRIDES)
        env = {k: v for k, v in os.environ.items() if not k.startswith("MAKE") and k != "PYTHON"}
        return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True,
                              env=env).stdout  # fmt: skip

    setup = dry("setup")
    assert "python3 -m venv .venv" in setup
    assert '.venv/bin/python -m pip install -q -c constraints.txt -e ".[dev]"' in setup
    assert ".venv/bin/python -m pytest" in dry("test-unit")
    other = dry("PYTHON=python3", "setup", "test-unit")
    assert "venv" not in other and "python3 -m pytest" in other  # the team's shared interpreter


def _library_modules() -> list[Path]:
    return sorted((ROOT / "a2dkit").rglob("*.py"))


def test_library_modules_stay_under_the_hard_size_limit():
    # keyed by path: many modules share a name (__init__.py, chat.py, config.py, ...)
    sizes = {p.relative_to(ROOT).as_posix(): len(p.read_text().splitlines())
             for p in _library_modules()}  # fmt: skip
    assert len(sizes) == len(_library_modules()) > 80  # every file counted, none shadowed
    assert len({Path(k).name for k in sizes}) < len(sizes)  # names repeat: the key must be the path
    too_long = {name: n for name, n in sizes.items() if n > 400}
    assert not too_long, f"modules over 400 lines: {too_long}"


def test_the_api_page_documents_every_library_module():
    documented = set(
        re.findall(r"automodule:: (a2dkit[\w.]*)", (ROOT / "book" / "api.md").read_text())
    )
    modules = set()
    for p in _library_modules():
        parts = p.relative_to(ROOT).with_suffix("").parts
        if (
            parts[-1] == "__main__"
            or "a2dkit_synthetic" in parts
            or parts[1:] in (("launch",), ("_version",))
        ):
            continue  # command shims and lm-eval's task helper, not library code
        modules.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    modules.discard("a2dkit")
    assert modules - documented == set(), "modules missing from book/api.md"
    assert documented - modules == set(), "book/api.md names modules that do not exist"


def test_the_published_book_is_built_at_laptop_and_ci_runs_smoke():
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "pages.yml").read_text())
    build = workflow["jobs"]["build"]
    assert build["env"]["A2DKIT_SCALE"] == "laptop"
    assert any("book/build.py" in step.get("run", "") for step in build["steps"])
    assert "export A2DKIT_SCALE ?= smoke" in (ROOT / "Makefile").read_text()  # make test / CI


def test_the_pages_workflow_caches_the_assets_where_the_kit_builds_them(monkeypatch, tmp_path):
    from a2dkit.data.self_chat import SelfChatSettings, self_chat_dir

    build = yaml.safe_load((ROOT / ".github" / "workflows" / "pages.yml").read_text())["jobs"]
    build = build["build"]
    caches = [step for step in build["steps"] if "actions/cache" in step.get("uses", "")]
    cached = {step["with"]["path"] for step in caches}
    cache = build["env"]["A2DKIT_CACHE"].replace("${{ github.workspace }}/", "")
    assert cache == ".a2dkit-cache"
    monkeypatch.setenv("A2DKIT_CACHE", str(tmp_path / cache))
    settings = SelfChatSettings("HuggingFaceTB/SmolLM2-135M-Instruct")
    where = self_chat_dir(settings).relative_to(tmp_path)
    assert str(where.parent) in cached  # chapter 11's data survives between book builds
    assert f"{cache}/smollm2-135m-instruct" in cached
