"""The contenders of a benchmark run: strategies, stores and peers, all of one kind.

A contender is built once per workspace and then answers queries; the harness times
:meth:`Built.query` and checks :meth:`Built.answer` of its result against the reference.

- **Strategies** count inside ``MemoryStore``: the built-in ``scan``, ``columnar``,
  ``indexed`` and ``auto``, and any ``package.module:function`` of the signature
  ``convstats_adapters.memory.counting.CountGroups`` (``--strategy``). They share one table
  per workspace, loaded once from its export by ``MemoryStore.from_path``'s loader.
- **Stores** are any object with the room port's ``count_groups``, made by
  ``package.module:factory`` from the :class:`~benchmarks.workspace.Workspace` (``--store``).
- **Peers** are numpy, polars and duckdb over the same facts (:mod:`benchmarks.peers`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import attrs

from benchmarks import peers
from benchmarks.workspace import Workspace
from convstats import Grouping, TimeWindow, TotalMode, Visibility
from convstats_adapters.memory import STRATEGY_NAMES, MemoryRooms, loader
from convstats_adapters.memory.table import FactTable

BUILT_IN = ("scan", "columnar", "indexed", "auto")
EXAMPLE = "benchmarks.examples.bisect:count"


@attrs.frozen
class Contender:
    """A way of answering the reports: its name, its kind and how it is built."""

    name: str
    kind: str  # "strategy", "store" or "peer"
    about: str
    build: Callable[[Workspace, Shared], Built]


@attrs.frozen
class Built:
    """A contender built over one workspace.

    ``query(grouping, window, visibility)`` is what is timed; ``answer(grouping, result)``
    turns its result into ``({key: count}, unspecified)``, after the timing.
    """

    query: Callable[[Grouping, TimeWindow, Visibility], Any]
    answer: Callable[[Grouping, Any], tuple[dict[Any, int], int]]
    footprint: dict[str, int] | None = None


class Shared:
    """What the contenders of one workspace share: its table, its peers' facts."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self._table: FactTable | None = None
        self._facts: peers.Facts | None = None
        self.load_seconds: float | None = None

    @property
    def table(self) -> FactTable:
        if self._table is None:
            import time

            began = time.perf_counter()
            self._table = loader.read_rooms(self.workspace.export_dir, indexed=True).table
            self.load_seconds = time.perf_counter() - began
        return self._table

    @property
    def facts(self) -> peers.Facts:
        if self._facts is None:
            self._facts = peers.Facts(self.workspace)
        return self._facts


def counts(found: Any) -> tuple[dict[Any, int], int]:
    """A ``GroupCounts`` as ``({key: count}, unspecified)``."""
    return dict(zip(found.keys, found.values, strict=True)), found.unspecified


def _room_store(store: Any) -> Built:
    def query(grouping: Grouping, window: TimeWindow, visibility: Visibility) -> Any:
        return store.count_groups(grouping, window, visibility, TotalMode.CONVSTATS)

    footprint = getattr(store, "footprint", None)
    return Built(
        query,
        lambda grouping, found: counts(found),
        dict(footprint()) if callable(footprint) else None,
    )


def strategy(name: str, function: Any = None, about: str = "") -> Contender:
    """A counting strategy run inside ``MemoryStore``: a built-in name, or a function."""

    def build(workspace: Workspace, shared: Shared) -> Built:
        rooms = MemoryRooms.from_table(shared.table, strategy=function or name)
        return _room_store(rooms)

    return Contender(name, "strategy", about or f"MemoryStore(strategy={name!r})", build)


def store(name: str, factory: Callable[[Workspace], Any]) -> Contender:
    """A room store made by ``factory(workspace)``."""
    return Contender(
        name,
        "store",
        f"{name}(workspace)",
        lambda workspace, shared: _room_store(factory(workspace)),
    )


def peer(name: str) -> Contender:
    def build(workspace: Workspace, shared: Shared) -> Built:
        built = peers.build(name, workspace, shared.facts)
        return Built(built.query, built.answer)

    about = {
        "numpy": "a boolean mask and np.bincount of row codes",
        "polars": "a lazy filter and a group_by of row codes, pl.len()",
        "duckdb": "SELECT row, count(*) … GROUP BY row on a table",
    }[name]
    return Contender(name, "peer", about, build)


def load_object(spec: str) -> Any:
    """The object ``package.module:name`` names; ValueError when there is none."""
    module_name, colon, attribute = spec.partition(":")
    if not colon or not module_name or not attribute:
        raise ValueError(f"{spec!r}: give package.module:name")
    try:
        found: Any = importlib.import_module(module_name)
    except Exception as error:  # ImportError, or whatever the module raises as it runs
        raise ValueError(
            f"{spec!r}: cannot import {module_name} ({type(error).__name__}: {error})"
        ) from None
    for part in attribute.split("."):
        found = getattr(found, part, None)
        if found is None:
            raise ValueError(f"{spec!r}: {module_name} has no {attribute}")
    if not callable(found):
        raise ValueError(f"{spec!r} is not callable")
    return found


def built_in() -> dict[str, Contender]:
    """Every contender the harness knows without being told: strategies, example, peers."""
    found = {name: strategy(name) for name in BUILT_IN if name in STRATEGY_NAMES}
    found[EXAMPLE] = strategy(
        EXAMPLE, load_object(EXAMPLE), "the example: sorted keys per group, two bisections"
    )
    for name in peers.installed():
        found[name] = peer(name)
    return found


def resolve(names: list[str], strategies: list[str], stores: list[str]) -> list[Contender]:
    """The contenders of a run: built-in ones by name, then the user's by spec.

    A spec already chosen (the example by name, or a spec given twice) is raced once; a
    ``--store`` named as a ``--strategy`` is refused, as its figures would mix with the
    strategy's.
    """
    known = built_in()
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ValueError(f"unknown contenders {unknown}; --list shows the known ones")
    chosen = {name: known[name] for name in names}
    for kind, specs in (("strategy", strategies), ("store", stores)):
        for spec in specs:
            if spec in chosen:
                if chosen[spec].kind != kind:
                    raise ValueError(f"{spec!r} is given as a {chosen[spec].kind} and a {kind}")
                continue
            function = load_object(spec)
            made = (
                strategy(spec, function, f"MemoryStore(strategy={spec})")
                if kind == "strategy"
                else store(spec, function)
            )
            chosen[spec] = made
    return list(chosen.values())
