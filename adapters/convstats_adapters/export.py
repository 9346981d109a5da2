"""``convstats export``: the collections the reports read, from MongoDB to a folder.

One file per collection, ``<collection>.json`` (or ``.json.gz``): JSON Lines of relaxed
Extended JSON, as ``mongoexport`` writes them and ``--data`` reads them. Each holds only the
fields the reports read (:data:`EXPORTED_FIELDS`), projected on the server: a password hash
never leaves it, and login tokens (their hashes only) only when asked for. Documents are
streamed, a batch at a time, so that a collection of any size takes the same memory.

The export is safe to run again: every file is written beside its final name and renamed
into place once all of them are complete, so that a failure leaves the folder as it was,
and an earlier export is replaced only when asked to (``replace=True``, ``--force``).
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import os
import tempfile
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import IO, Any, Final, Protocol

import attrs

from convstats.errors import ConvstatsError, MissingDependency
from convstats_adapters import documents as doc

__all__ = [
    "EXPORTED_FIELDS",
    "DocumentSource",
    "ExportError",
    "ExportedFile",
    "add_command",
    "export_workspace",
]

#: What the export keeps of each collection: every field the reports read, nothing else.
#: ``servedBy`` and ``source`` are kept whole (a null ``servedBy`` stays null).
EXPORTED_FIELDS: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType(
    {
        doc.ROOMS: (
            "_id",
            "t",
            "ts",
            "servedBy",
            "departmentId",
            "departmentAncestors",
            "open",
            "onHold",
            "metrics.chatDuration",
            "source",
            "tags",
        ),
        doc.USERS: ("_id", "name", "roles", "active"),
        doc.PERMISSIONS: ("_id", "roles"),
        doc.DEPARTMENTS: ("_id", "name", "type", "ancestors"),
        doc.UNIT_MONITORS: ("_id", "monitorId", "unitId"),
        doc.DEPARTMENT_AGENTS: ("_id", "agentId", "departmentId"),
    }
)

_BATCH: Final = 1000
_SUFFIXES: Final = (".json", ".json.gz")
_EPILOG = """\
examples:
  convstats export --mongo mongodb://localhost:27017/rocketchat --out export/
  convstats conversations-by-agent --data export/ --start 2024-03-01 --end 2024-04-01

  convstats export --mongo 'mongodb+srv://reports@cluster.example.net/rocketchat' \\
      --out export/ --gzip --with-login-tokens --force
  convstats serve --data export/
  CONVSTATS_MONGODB_URI='mongodb://reports:secret@db/rocketchat' convstats export --out export/

--mongo and --database may come from the environment instead, from the variables their help
names (an option given wins), which keeps a password off the command line, where ps shows it.

Writes the six collections the reports read, each with only the fields they use:
rocketchat_room, users (_id, name, roles, active; never a password), rocketchat_permissions,
rocketchat_livechat_department, rocketchat_livechat_unit_monitors and
rocketchat_livechat_department_agents. Files are created readable by their owner only.

exit status: 0 success; 2 a bad option or URI; 1 anything else (the server, the folder),
with one line on stderr.
"""


class ExportError(ConvstatsError, OSError):
    """An export that cannot be written: the folder, an earlier export in it, a full disk."""


class DocumentSource(Protocol):
    """Where an export reads documents: :class:`~convstats_adapters.mongo.MongoStore`."""

    def documents(
        self, collection: str, fields: Collection[str], *, batch_size: int = ...
    ) -> Iterator[Mapping[str, Any]]:
        """Every document of ``collection`` holding only ``fields``, streamed."""
        ...


@attrs.frozen
class ExportedFile:
    """One collection's file, written: where, and how many documents it holds."""

    collection: str
    path: Path
    documents: int


def _targets(folder: Path, suffix: str) -> dict[str, Path]:
    return {name: folder / f"{name}{suffix}" for name in EXPORTED_FIELDS}


def _earlier_exports(folder: Path, replace: bool) -> list[Path]:
    """The files of an earlier export in ``folder``, which ``replace`` allows to replace."""
    found = [
        folder / f"{name}{suffix}"
        for name in EXPORTED_FIELDS
        for suffix in _SUFFIXES
        if os.path.lexists(folder / f"{name}{suffix}")
    ]
    for path in found:
        if path.is_dir() and not path.is_symlink():
            raise ExportError(f"{path} is a directory: give another --out, or remove it")
    if found and not replace:
        shown = ", ".join(path.name for path in found[:3]) + (", …" if len(found) > 3 else "")
        raise ExportError(
            f"{folder} already holds an export ({shown}): give --force to replace it, "
            "or another folder"
        )
    return found


def _prepare(folder: Path) -> bool:
    """Make sure ``folder`` is a folder; whether it had to be created."""
    if folder.is_dir():
        return False
    if os.path.lexists(folder):
        raise ExportError(f"{folder} is not a folder")
    try:
        folder.mkdir(parents=True)
    except OSError as error:
        raise ExportError(f"{folder}: cannot create the folder: {error.strerror}") from None
    return True


def _encoder() -> Callable[[Mapping[str, Any]], str]:
    try:
        from bson import json_util
    except ImportError as exc:
        raise MissingDependency("pymongo", "mongo") from exc

    def encode(document: Mapping[str, Any]) -> str:
        # mongoexport's own form: relaxed Extended JSON, one compact document a line. ASCII
        # escapes keep every string whole, lone surrogates included.
        return json_util.dumps(
            document, json_options=json_util.RELAXED_JSON_OPTIONS, separators=(",", ":")
        )

    return encode


@contextlib.contextmanager
def _compressed(raw: IO[bytes], name: str, compress: bool) -> Iterator[IO[bytes]]:
    if not compress:
        yield raw
        return
    with gzip.GzipFile(filename=name, mode="wb", fileobj=raw, compresslevel=6) as packed:
        yield packed  # type: ignore[misc]


def _write_collection(
    source: DocumentSource,
    collection: str,
    fields: Sequence[str],
    temporary: Path,
    *,
    compress: bool,
    encode: Callable[[Mapping[str, Any]], str],
    progress: Callable[[str, int], None] | None,
) -> int:
    written = reported = 0
    with open(temporary, "wb") as raw:
        with _compressed(raw, f"{collection}.json", compress) as stream:
            lines: list[str] = []
            for document in source.documents(collection, fields, batch_size=_BATCH):
                lines.append(encode(document))
                if len(lines) == _BATCH:
                    stream.write(("\n".join(lines) + "\n").encode("ascii"))
                    written += len(lines)
                    lines.clear()
                    if progress is not None:
                        progress(collection, written)
                        reported = written
            if lines:
                stream.write(("\n".join(lines) + "\n").encode("ascii"))
                written += len(lines)
        raw.flush()
        os.fsync(raw.fileno())
    if progress is not None and (reported != written or not written):  # the end, once
        progress(collection, written)
    return written


def _sync_folder(folder: Path) -> None:
    """Make the renames durable, where the system can (POSIX: fsync the directory)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def export_workspace(
    source: DocumentSource,
    folder: str | os.PathLike[str],
    *,
    compress: bool = False,
    with_login_tokens: bool = False,
    replace: bool = False,
    progress: Callable[[str, int], None] | None = None,
) -> list[ExportedFile]:
    """Write the collections the reports read from ``source`` to ``folder``; what was written.

    Each collection of :data:`EXPORTED_FIELDS` becomes ``<collection>.json`` (gzip:
    ``.json.gz`` with ``compress``), JSON Lines of relaxed Extended JSON, holding only those
    fields; ``with_login_tokens`` adds each user's login token hashes
    (``services.resume.loginTokens.hashedToken``, what signing in to ``convstats serve``
    needs) and nothing else of ``services``. ``folder`` is created when missing, and removed
    again when the export fails.

    Nothing is read before ``folder`` is checked: an earlier export there (either suffix) is
    an :class:`ExportError` unless ``replace``. Every file is written to a temporary name
    (mode 0600) and renamed into place when all are complete, replacing the earlier export's
    files and removing their other-suffix twins, which the loader would refuse beside them;
    on any failure the temporary files are removed and the folder is left as it was.
    ``progress(collection, documents_written)`` is called after every batch and at the end
    of each collection. Store failures are raised as the store raises them
    (:class:`~convstats.errors.StorageError`); the folder's as :class:`ExportError`.
    """
    encode = _encoder()
    root = Path(folder)
    created = _prepare(root)
    earlier = _earlier_exports(root, replace)
    suffix = ".json.gz" if compress else ".json"
    targets = _targets(root, suffix)
    temporaries: dict[str, Path] = {}
    counts: dict[str, int] = {}
    complete = False
    try:
        for collection, target in targets.items():
            fields = EXPORTED_FIELDS[collection]
            if collection == doc.USERS and with_login_tokens:
                fields = (*fields, doc.LOGIN_TOKEN_HASHES)
            try:
                fd, name = tempfile.mkstemp(dir=root, prefix=f".{target.name}.", suffix=".partial")
            except OSError as error:
                raise ExportError(f"{root}: cannot write in the folder: {error.strerror}") from None
            os.close(fd)
            temporaries[collection] = Path(name)
            try:
                counts[collection] = _write_collection(
                    source,
                    collection,
                    fields,
                    temporaries[collection],
                    compress=compress,
                    encode=encode,
                    progress=progress,
                )
            except OSError as error:
                if isinstance(error, ConvstatsError):
                    raise
                raise ExportError(
                    f"{target}: cannot be written: {error.strerror or error}"
                ) from None
        for collection, target in targets.items():
            os.replace(temporaries.pop(collection), target)
        for path in earlier:
            if path not in targets.values():
                path.unlink(missing_ok=True)
        complete = True
    except OSError as error:
        if isinstance(error, ConvstatsError):
            raise
        raise ExportError(f"{root}: {error.strerror or error}") from None
    finally:
        for leftover in temporaries.values():
            leftover.unlink(missing_ok=True)
        if created and not complete:
            with contextlib.suppress(OSError):  # only when empty: nothing else is removed
                root.rmdir()
    _sync_folder(root)
    return [ExportedFile(name, path, counts[name]) for name, path in targets.items()]


def add_command(commands: Any) -> argparse.ArgumentParser:
    """Add ``export`` to ``commands`` (an ``add_subparsers`` result)."""
    export = commands.add_parser(
        "export",
        help="write the collections the reports read from MongoDB to a folder --data reads",
        description=(
            "Export the six collections the reports read from a Rocket.Chat MongoDB, each\n"
            "with only the fields the reports use, as mongoexport files (JSON Lines of\n"
            "relaxed Extended JSON) that --data reads back. Streamed, with progress on a\n"
            "terminal; each file appears complete or not at all."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    export.add_argument(
        "--mongo",
        metavar="URI",
        # Required, but it may come from the environment: the command line says so.
        help="a MongoDB URI (mongodb:// or mongodb+srv://) of a Rocket.Chat database; "
        "needs the 'mongo' extra",
    )
    export.add_argument(
        "--database", metavar="NAME", help="the database name, when the URI names none"
    )
    export.add_argument(
        "--out", metavar="DIR", required=True, help="the folder to write (created if missing)"
    )
    export.add_argument(
        "--gzip", action="store_true", help="write <collection>.json.gz, compressed with gzip"
    )
    export.add_argument(
        "--with-login-tokens",
        action="store_true",
        help="keep each user's login token hashes (services.resume.loginTokens.hashedToken), "
        "which signing in to 'convstats serve --data' needs; nothing else of services",
    )
    export.add_argument(
        "--force",
        action="store_true",
        help="replace an earlier export in the folder (default: refuse)",
    )
    # The command line's shared checks and error paths read these of every command.
    export.set_defaults(data=None, format=None)
    return export  # type: ignore[no-any-return]
