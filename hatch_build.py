"""Build hook: an editable install that type checkers and IDEs can read.

An editable wheel of convstats is one ``.pth`` file naming one folder, ``build/editable`` (the
wheel's ``dev-mode-dirs``), where this hook links each package the wheel installs to its folder in
the repository, as setuptools' strict editable mode does. Python, mypy, pyright and IDEs all read a
plain path entry, and the folder holds the two packages and nothing else, so the repository root
(with ``tests/``, ``benchmarks/`` and the folder ``adapters/``) stays off ``sys.path``. Hatchling's
exact mode would map the packages with an import hook instead, which type checkers do not run.
Standard wheels and the sdist are built as if this hook were not there.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hatchling.builders.config import BuilderConfig
from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class EditableLinkTree(BuildHookInterface[BuilderConfig]):
    """Links the wheel's packages into its one dev-mode folder before an editable wheel is built."""

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        """Make the link tree for an editable wheel; leave every other build alone."""
        if self.target_name != "wheel" or version != "editable":
            return
        folders = self.build_config.dev_mode_dirs
        if len(folders) != 1:
            message = f"dev-mode-dirs must name the one folder of the link tree, not {folders!r}"
            raise ValueError(message)
        root = Path(self.root)
        link_tree(
            root / folders[0],
            {Path(package).name: root / package for package in self.build_config.packages},
        )


def link_tree(folder: Path, packages: Mapping[str, Path]) -> None:
    """Make ``folder`` hold one symbolic link per package, to its folder, and nothing else.

    Links already right are kept, so that installing again changes nothing; each new link
    replaces the old one in one step, so that a running program never finds it missing.
    """
    folder.mkdir(parents=True, exist_ok=True)
    for entry in folder.iterdir():
        if entry.name.startswith(".") or entry.name in packages:
            continue  # a dotted name is not importable
        if not entry.is_symlink():
            message = f"{entry} is not a link to a package: remove it, it would be importable"
            raise FileExistsError(message)
        entry.unlink()  # a package the wheel no longer has
    for name, target in packages.items():
        link = folder / name
        relative = os.path.relpath(target, folder)
        if link.is_symlink() and os.readlink(link) == relative:
            continue
        if link.exists() and not link.is_symlink():
            message = f"{link} is not a link to {target}: remove it, and install again"
            raise FileExistsError(message)
        building = folder / f".{name}.{os.getpid()}"
        building.unlink(missing_ok=True)
        try:
            building.symlink_to(relative, target_is_directory=True)
        except OSError as exc:
            message = (
                f"cannot link {link} to {target} ({exc.strerror}): an editable install needs"
                " symbolic links (on Windows, Developer Mode); install without -e instead"
            )
            raise OSError(message) from exc
        building.replace(link)
