"""The orchestrator image: multi-stage, not root, no compilers where it runs, settings that do
not point beside the installed package, and pyproject.toml as the one list of what is
installed, in the image as in `make setup` (the README's path)."""

from __future__ import annotations

import re
import shlex
import tomllib

from tests.unit.deploy.deploy_files import (
    DOCKERFILE,
    ROOT,
    compose,
    dockerfile_stages,
    image_env,
)

OPTIONS_WITH_VALUES = {"--extra-index-url", "--index-url", "-i", "--find-links", "-f"}
PROJECT = re.compile(r'^"?\.(\[(?P<extras>[^\]]*)\])?"?$')
COMPILERS = ("build-essential", "gcc", "g++", "clang", "make", "cmake")


def pyproject_extras() -> set[str]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return set(data["project"]["optional-dependencies"])


def pip_install_targets(command: str) -> list[str]:
    """What each `pip install` in a shell command installs (option values left out)."""
    words = shlex.split(command.replace("&&", " && "), posix=False)
    targets: list[str] = []
    for start, word in enumerate(words[:-1]):
        if word != "pip" or words[start + 1] != "install":
            continue
        skip = False
        for arg in words[start + 2 :]:
            if arg == "&&":
                break
            if skip or arg.startswith("-"):
                skip = arg in OPTIONS_WITH_VALUES and not skip
                continue
            targets.append(arg)
    return targets


def project_extras(target: str, arg_defaults: dict[str, str]) -> set[str]:
    match = PROJECT.match(target)
    assert match, f"{target!r}: install the project, never a package by name"
    extras = match.group("extras") or ""
    for name, value in arg_defaults.items():
        extras = extras.replace(f"${{{name}}}", value)
    return {e.strip() for e in extras.split(",") if e.strip()}


def test_the_image_installs_the_project_with_its_extras_only() -> None:
    instructions = [pair for stage in dockerfile_stages() for pair in stage]
    args = dict(rest.split("=", 1) for ins, rest in instructions if ins == "ARG" and "=" in rest)
    runs = [rest for ins, rest in instructions if ins == "RUN"]
    targets = [t for run in runs for t in pip_install_targets(run)]
    assert targets, "the Dockerfile installs the project"
    for target in targets:
        assert project_extras(target, args) <= pyproject_extras()
    for service in compose()["services"].values():
        extras = service.get("build", {}).get("args", {}).get("EXTRAS", "")
        assert set(extras.split(",")) - {""} <= pyproject_extras()


def test_make_setup_installs_from_pyproject_too() -> None:
    makefile = (ROOT / "Makefile").read_text()
    targets = [t for line in makefile.splitlines() for t in pip_install_targets(line)]
    project = [t for t in targets if t != "pip"]  # `pip install --upgrade pip`
    assert project and all(project_extras(t, {}) <= pyproject_extras() for t in project)
    assert "make run" in (ROOT / "README.md").read_text()


def test_the_checker_refuses_a_package_by_name() -> None:
    assert pip_install_targets("pip install --extra-index-url https://x torch && ls") == ["torch"]
    assert pip_install_targets('pip install -q -e ".[cpu,dev]"') == ['".[cpu,dev]"']


def test_multi_stage_non_root_without_compilers_at_runtime() -> None:
    stages = dockerfile_stages()
    assert len(stages) >= 2
    build, runtime = stages[0], stages[-1]
    assert any("build-essential" in rest for ins, rest in build if ins == "RUN")
    runtime_runs = " ".join(rest for ins, rest in runtime if ins == "RUN")
    assert "apt-get install" not in runtime_runs
    assert not any(f" {compiler}" in runtime_runs for compiler in COMPILERS)
    assert any(ins == "COPY" and rest.startswith("--from=build") for ins, rest in runtime)
    (user,) = [rest for ins, rest in runtime if ins == "USER"]
    assert user.split(":")[0] not in {"0", "root"}
    assert build[0][1].startswith("${PYTHON_IMAGE}") and runtime[0][1].startswith("${PYTHON_IMAGE}")
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", DOCKERFILE.read_text(), re.M)
    assert base and re.fullmatch(r"python:3\.11\.\d+-slim-\w+", base.group(1)), "pin the base"


def test_settings_do_not_point_beside_the_installed_package() -> None:
    env = image_env()
    assert env["TANDEM_ADAPTERS_DIR"] == "/adapters"
    assert env["TANDEM_INDEX_ROOTS"] == "/docs"
    assert env["TANDEM_DATA_DIR"] == "/data" and env["TANDEM_MODELS_DIR"].startswith("/data/")
    assert env["TANDEM_HOST"] == "0.0.0.0", "so the server refuses to run without keys"


def test_the_build_context_holds_what_the_dockerfile_copies() -> None:
    """.dockerignore lets in only what COPY names; a source it leaves out fails the build."""
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    allowed = {line[1:] for line in lines if line.startswith("!")}
    assert "*" in lines, ".dockerignore starts from nothing and lets paths in"
    copied = [
        source
        for ins, rest in (pair for stage in dockerfile_stages() for pair in stage)
        if ins == "COPY" and not rest.startswith("--from")
        for source in rest.split()[:-1]
    ]
    assert copied
    for source in copied:
        assert any(source == a or source.startswith(f"{a}/") for a in allowed), source
        assert (ROOT / source).exists(), source
