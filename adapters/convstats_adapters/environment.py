"""Options that may come from the environment: ``CONVSTATS_*`` variables, an option winning.

Everything that says where the workspace is or how the service runs can be set in the
environment instead of on the command line, so that a MongoDB password never has to be an
argument, which ``ps`` shows to every user of the machine. An option given on the command
line wins over its variable; an empty variable counts as unset. A variable's value is read
by the option's own type and choices, and a bad one is a usage error naming the variable.

The command line registers its options with :meth:`EnvironmentOptions.add` (which also adds
the variable's name to each option's help) and fills in what the command line left out with
:meth:`EnvironmentOptions.resolve`.
"""

from __future__ import annotations

import argparse
from collections.abc import Collection, Mapping, Sequence
from typing import Any, Final

import attrs

__all__ = ["VARIABLES", "EnvironmentOptions", "InvalidVariable"]

#: The variable of each option (by its ``dest``) that may come from the environment.
VARIABLES: Final[Mapping[str, str]] = {
    "data": "CONVSTATS_DATA",
    "mongo": "CONVSTATS_MONGODB_URI",
    "database": "CONVSTATS_DATABASE",
    "compat": "CONVSTATS_COMPAT",
    "monitor_scope": "CONVSTATS_MONITOR_SCOPE",
    "tz": "CONVSTATS_TZ",
    "host": "CONVSTATS_HOST",
    "port": "CONVSTATS_PORT",
    "cache_ttl": "CONVSTATS_CACHE_TTL",
    "timeout": "CONVSTATS_TIMEOUT",
    "header_timeout": "CONVSTATS_HEADER_TIMEOUT",
    "limit_connections": "CONVSTATS_LIMIT_CONNECTIONS",
    "live": "CONVSTATS_LIVE",
    "max_staleness": "CONVSTATS_MAX_STALENESS",
    "stale": "CONVSTATS_STALE",
    "log_level": "CONVSTATS_LOG_LEVEL",
    "log_format": "CONVSTATS_LOG_FORMAT",
}


class InvalidVariable(ValueError):
    """A variable's value the option would refuse; the message names the variable."""


class _Unset:
    """The default of an option read from the environment, until the environment is read."""

    def __repr__(self) -> str:
        return "<unset>"


_UNSET: Final = _Unset()


@attrs.define
class _Option:
    action: argparse.Action
    variable: str
    default: Any


@attrs.define
class EnvironmentOptions:
    """The options of a command line that may come from the environment."""

    _options: dict[str, _Option] = attrs.field(factory=dict, init=False)

    def add(self, parser: argparse.ArgumentParser) -> None:
        """Let the options of ``parser`` named in :data:`VARIABLES` come from the environment.

        Their help ends with the variable's name. Call it once the options are added.
        """
        # argparse lists a parser's options only in this attribute.
        for action in parser._actions:
            variable = VARIABLES.get(action.dest)
            if variable is None or action.dest in self._options:
                continue
            self._options[action.dest] = _Option(action, variable, action.default)
            action.default = _UNSET
            action.help = f"{action.help or ''} [env: {variable}]".lstrip()

    def resolve(
        self,
        args: argparse.Namespace,
        environ: Mapping[str, str],
        *,
        exclusive: Sequence[Collection[str]] = (),
    ) -> frozenset[str]:
        """Fill in ``args`` from ``environ`` where the command line gave nothing, else defaults.

        Options of one group of ``exclusive`` exclude each other: when one of them is on the
        command line, the others' variables are ignored; when none is, at most one of their
        variables may be set. Returns the options whose value came from the environment.
        Raises :class:`InvalidVariable` for a value the option refuses.
        """
        given = {
            dest
            for dest in self._options
            if hasattr(args, dest) and getattr(args, dest) is not _UNSET
        }
        ignored: set[str] = set()
        for group in exclusive:
            if given & set(group):
                ignored.update(group)
                continue
            named = [
                self._options[dest].variable
                for dest in group
                if dest in self._options and environ.get(self._options[dest].variable)
            ]
            if len(named) > 1:
                raise InvalidVariable(f"{' and '.join(named)}: set only one of them")
        from_environment: set[str] = set()
        for dest, option in self._options.items():
            if not hasattr(args, dest) or dest in given:
                continue
            text = environ.get(option.variable) or None
            if text is None or dest in ignored:
                setattr(args, dest, option.default)
            else:
                setattr(args, dest, _convert(option, text))
                from_environment.add(dest)
        return frozenset(from_environment)


#: How a flag's variable says yes or no (``CONVSTATS_LIVE=1``).
_FLAG_VALUES: Final = {
    **dict.fromkeys(("1", "true", "yes", "on"), True),
    **dict.fromkeys(("0", "false", "no", "off"), False),
}


def _convert(option: _Option, text: str) -> Any:
    action = option.action
    if action.nargs == 0 and isinstance(action.const, bool):  # a flag (store_true)
        flag = _FLAG_VALUES.get(text.strip().lower())
        if flag is None:
            raise InvalidVariable(
                f"{option.variable}: invalid value {text!r} (1, true, yes, on or 0, false, no, off)"
            )
        return flag if action.const else not flag
    try:
        value = text if action.type is None else action.type(text)  # type: ignore[operator]
    except argparse.ArgumentTypeError as error:
        raise InvalidVariable(f"{option.variable}: {error}") from None
    except (TypeError, ValueError):
        raise InvalidVariable(f"{option.variable}: invalid value {text!r}") from None
    if action.choices is not None and value not in action.choices:
        choices = ", ".join(repr(choice) for choice in action.choices)
        raise InvalidVariable(f"{option.variable}: invalid choice {text!r} (choose from {choices})")
    return value
