"""The package as others get it: its editable install, its sdist and its index page."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"convstats", "convstats_adapters"}
#: Where each package lives in the repository.
PACKAGE_FOLDERS = {
    "convstats": ROOT / "convstats",
    "convstats_adapters": ROOT / "adapters" / "convstats_adapters",
}
#: The one folder an editable install puts on sys.path: a link to each package, nothing else.
LINK_TREE = ROOT / "build" / "editable"

CONSUMER = """\
from convstats import ConversationsByAgent, Report, TimeWindow
from convstats_adapters import MemoryStore


def report(path: str, window: TimeWindow) -> Report:
    return ConversationsByAgent(store=MemoryStore.from_path(path)).report(window)
"""
# A wrong type that only a checker that reads the packages can see.
WRONG = """\
from convstats_adapters import MemoryStore

store: int = MemoryStore({})
"""


def _editable_url() -> str | None:
    """The folder this environment's convstats is installed editable from, as a URL."""
    try:
        text = importlib.metadata.distribution("convstats").read_text("direct_url.json")
    except importlib.metadata.PackageNotFoundError:
        return None
    info = json.loads(text or "{}")
    return info.get("url") if info.get("dir_info", {}).get("editable") else None


@pytest.fixture(scope="module")
def python(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The running Python when it has convstats installed editable from here, else a new venv's."""
    if _editable_url() == ROOT.as_uri():
        return sys.executable
    venv = tmp_path_factory.mktemp("editable") / "venv"
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    steps = (
        [sys.executable, "-m", "venv", str(venv)],
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "-e", str(ROOT)],
    )
    for step in steps:
        try:
            done = subprocess.run(step, capture_output=True, text=True, timeout=240)
        except subprocess.TimeoutExpired:
            pytest.skip(f"EDITABLE INSTALL NOT TESTED: {step[2:4]} took over 240 s")
        if done.returncode != 0:
            last = (done.stderr.strip() or done.stdout.strip()).splitlines()[-1:]
            pytest.skip(f"EDITABLE INSTALL NOT TESTED: {' '.join(step[2:4])} failed: {last}")
    return str(python)


def _mypy(python: str, folder: Path, source: str) -> subprocess.CompletedProcess[str]:
    (folder / "consumer.py").write_text(source, encoding="utf-8")
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--python-executable",
            python,
            "--cache-dir",
            str(folder / ".mypy_cache"),
            "--no-color-output",
            "consumer.py",
        ],
        capture_output=True,
        text=True,
        cwd=folder,  # away from the repository, its configuration and its folders
        timeout=120,
        env={**os.environ, "MYPYPATH": ""},
    )


def test_an_editable_install_is_visible_to_type_checkers(python, tmp_path):
    """mypy --strict checks a module that imports both packages of an editable install."""
    pytest.importorskip("mypy", reason="EDITABLE INSTALL NOT TYPE-CHECKED: mypy is not installed")
    consumer = tmp_path / "consumer"
    consumer.mkdir()
    checked = _mypy(python, consumer, CONSUMER)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # The checker reads the packages' own types: a wrong one is found, not an unknown module.
    wrong = _mypy(python, consumer, WRONG)
    assert wrong.returncode == 1
    assert '(expression has type "MemoryStore", variable has type "int")' in wrong.stdout
    assert "import-not-found" not in wrong.stdout


def test_an_editable_install_exposes_the_two_packages_only(python, tmp_path):
    """Neither the repository root nor tests/, benchmarks/ or examples/ become importable."""
    code = (
        "import importlib.util, json, sys;"
        "names = ['convstats', 'convstats_adapters', 'tests', 'benchmarks', 'examples',"
        " 'adapters', 'hatch_build', 'build'];"
        "print(json.dumps({name: importlib.util.find_spec(name) is not None for name in names}));"
        "print(json.dumps(sys.path))"
    )
    done = subprocess.run(
        [python, "-I", "-c", code], capture_output=True, text=True, cwd=tmp_path, check=True
    )
    found_line, path_line = done.stdout.splitlines()
    found = json.loads(found_line)
    assert {name for name, there in found.items() if there} == PACKAGES
    assert str(ROOT) not in json.loads(path_line)
    assert str(LINK_TREE) in json.loads(path_line)


def _build(kind: str, folder: Path, source: Path = ROOT) -> Path:
    """Build a wheel, an editable wheel or an sdist of ``source`` with hatchling, in process."""
    build = pytest.importorskip("hatchling.build", reason="hatchling is not installed")
    previous = Path.cwd()
    os.chdir(source)  # PEP 517 hooks run in the project's folder
    try:
        return folder / getattr(build, f"build_{kind}")(str(folder))
    finally:
        os.chdir(previous)


def test_the_editable_wheel_adds_exactly_the_link_tree(tmp_path):
    """hatchling's editable wheel is a plain .pth naming build/editable, no import hook.

    Building it links each package there, and the folder holds those two links only.
    """
    wheel = _build("editable", tmp_path)
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        [pth] = [name for name in names if name.endswith(".pth")]
        lines = archive.read(pth).decode().splitlines()
        [metadata] = [name for name in names if name.endswith(".dist-info/METADATA")]
        requires = [
            line
            for line in archive.read(metadata).decode().splitlines()
            if line.startswith("Requires-Dist:") and "extra ==" not in line
        ]
    assert [Path(line) for line in lines] == [LINK_TREE]
    assert [name for name in names if name.endswith(".py")] == []  # no import hook to skip
    assert requires == ["Requires-Dist: attrs>=23.1"]  # nor the editables package it needs
    assert {entry.name for entry in LINK_TREE.iterdir()} == PACKAGES
    for name in PACKAGES:
        link = LINK_TREE / name
        assert link.is_symlink()
        assert link.resolve() == PACKAGE_FOLDERS[name].resolve()
        assert (link / "py.typed").is_file()  # what makes type checkers read an installed package


def test_the_wheel_and_the_sdist_hold_the_packages_and_no_link_tree(tmp_path):
    """Beside an editable install's links, the sdist and the plain wheels hold the packages."""
    _build("editable", tmp_path / "editable")
    sdist = _build("sdist", tmp_path / "sdist")
    with tarfile.open(sdist) as archive:
        safely = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}  # 3.10.12 on
        archive.extractall(tmp_path / "unpacked", **safely)
        members = {name.partition("/")[2] for name in archive.getnames()}
    assert {
        "convstats/__init__.py",
        "convstats/py.typed",
        "adapters/convstats_adapters/__init__.py",
        "adapters/convstats_adapters/py.typed",
        "hatch_build.py",  # the wheel built from the sdist needs its build hook
    } <= members
    assert not {name for name in members if name.startswith("build/")}
    [unpacked] = (tmp_path / "unpacked").iterdir()
    for source in (ROOT, unpacked):
        wheel = _build("wheel", tmp_path / source.name, source)
        with zipfile.ZipFile(wheel) as archive:
            top = {name.partition("/")[0] for name in archive.namelist()}
        assert top == {*PACKAGES, f"{wheel.name.partition('-py3')[0]}.dist-info"}
    assert not (unpacked / "build").exists()  # only an editable build makes the link tree


def _link_tree(folder: Path, packages: dict[str, Path]) -> None:
    """Run the build hook's link_tree, loaded from its file as hatchling loads it."""
    pytest.importorskip("hatchling", reason="hatchling is not installed")
    spec = importlib.util.spec_from_file_location("hatch_build", ROOT / "hatch_build.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.link_tree(folder, packages)


def test_installing_again_keeps_the_links_and_mends_the_tree(tmp_path):
    """A second build changes no right link, replaces a wrong one and drops a stale one."""
    core, adapters, elsewhere = (tmp_path / name for name in ("core", "adapters", "elsewhere"))
    for folder in (core, adapters, elsewhere):
        folder.mkdir()
    tree = tmp_path / "build" / "editable"
    packages = {"convstats": core, "convstats_adapters": adapters}
    _link_tree(tree, packages)
    first = {entry.name: os.lstat(entry).st_ino for entry in tree.iterdir()}
    _link_tree(tree, packages)
    assert {entry.name: os.lstat(entry).st_ino for entry in tree.iterdir()} == first
    (tree / "convstats").unlink()
    (tree / "convstats").symlink_to(elsewhere)
    (tree / "removed_package").symlink_to(elsewhere)
    _link_tree(tree, packages)
    assert {entry.name: entry.resolve() for entry in tree.iterdir()} == {
        "convstats": core,
        "convstats_adapters": adapters,
    }


@pytest.mark.parametrize("name", ["convstats", "stray.py"])
def test_the_link_tree_never_replaces_what_it_did_not_make(tmp_path, name):
    """A file or folder in the link tree that is not a link stops the build and is named."""
    tree = tmp_path / "editable"
    tree.mkdir()
    (tree / name).mkdir()
    with pytest.raises(FileExistsError, match=rf"{name}\b.* is not a link"):
        _link_tree(tree, {"convstats": tmp_path})
    assert (tree / name).is_dir()


def test_the_sdist_holds_the_docs_and_what_the_readme_shows(tmp_path):
    """The source distribution has docs/, the sample and the code, and no local leftovers."""
    with tarfile.open(_build("sdist", tmp_path)) as archive:
        members = {name.partition("/")[2] for name in archive.getnames()}
    assert {
        "README.md",
        "LICENSE",
        "pyproject.toml",
        "docs/behaviour.md",
        "docs/dashboard.png",
        "benchmarks/README.md",
        "examples/sample/rocketchat_room.json",
        "convstats/__init__.py",
        "adapters/convstats_adapters/__init__.py",
    } <= members
    assert {path for _, path, _ in _readme_links() if path} <= members
    assert not {name for name in members if name.startswith((".coverage", ".venv/"))}


REPOSITORY = "https://github.com/convstats/convstats"
#: Where the README's links and images may point into the repository, on its index page too.
_REPOSITORY_PREFIXES = (f"{REPOSITORY}/blob/main/", f"{REPOSITORY}/tree/main/")
_IMAGE_PREFIX = "https://raw.githubusercontent.com/convstats/convstats/main/"
_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def _anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives a Markdown file's headings."""
    headings = re.findall(r"^#+ (.+)$", markdown, flags=re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}


def _readme_links() -> list[tuple[str, str | None, str]]:
    """Each link of the README: its target, the repository file it names (or None), its anchor."""
    links = []
    for target in _LINK.findall((ROOT / "README.md").read_text(encoding="utf-8")):
        address, _, anchor = target.partition("#")
        path = None
        for prefix in (*_REPOSITORY_PREFIXES, _IMAGE_PREFIX):
            if address.startswith(prefix):
                path = address.removeprefix(prefix)
        links.append((target, path, anchor))
    return links


def test_readme_links_work_on_the_package_index_page():
    """Every link and image is absolute or an anchor of the page, and each one resolves.

    The README is also the package's page on PyPI, where a relative address leads nowhere:
    files of the repository are linked on GitHub, and must exist here, with their anchors.
    """
    readme_anchors = _anchors((ROOT / "README.md").read_text(encoding="utf-8"))
    links = _readme_links()
    assert links
    for target, path, anchor in links:
        if target.startswith("#"):
            assert anchor in readme_anchors, target
            continue
        assert target.startswith("https://"), f"{target}: relative, broken on the index page"
        if not target.startswith((REPOSITORY, _IMAGE_PREFIX)):
            continue
        assert path is not None, f"{target}: not a file of the main branch"
        assert (ROOT / path).exists(), target
        if anchor:
            assert anchor in _anchors((ROOT / path).read_text(encoding="utf-8")), target
    images = [path for target, path, _ in links if target.startswith(_IMAGE_PREFIX)]
    assert images == ["docs/dashboard.png", "docs/dashboard-phone.png"]
