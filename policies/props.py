"""Reading resource properties the way the Pulumi CLI hands them to a policy, without tripping on unknowns.

During `pulumi preview` the CLI marks values it cannot know yet (an ARN of a role not created yet, a policy
document built from it) with sentinel strings; `pulumi_policy` wraps the properties in a proxy that raises
`UnknownValueError` on access to such a value. Rules here first turn the proxied properties into plain
Python, with every unknown replaced by the `UNKNOWN` marker, so one unknown field never hides a violation
found in the known ones. A rule then reports what it proved, and only when nothing was proved but something
was unknown does it raise `UnknownValueError` — which the CLI shows as "can't run policy during preview"
(neither a pass nor a failure); `pulumi up` checks again with the real values.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pulumi_policy.proxy import (
    UNKNOWN_ARCHIVE_VALUE,
    UNKNOWN_ARRAY_VALUE,
    UNKNOWN_ASSET_VALUE,
    UNKNOWN_BOOLEAN_VALUE,
    UNKNOWN_NUMBER_VALUE,
    UNKNOWN_OBJECT_VALUE,
    UNKNOWN_STRING_VALUE,
    UnknownValueError,
)

UNKNOWN_SENTINELS = frozenset({
    UNKNOWN_BOOLEAN_VALUE, UNKNOWN_NUMBER_VALUE, UNKNOWN_STRING_VALUE, UNKNOWN_ARRAY_VALUE,
    UNKNOWN_ASSET_VALUE, UNKNOWN_ARCHIVE_VALUE, UNKNOWN_OBJECT_VALUE,
})


class _Unknown:
    """A value the engine cannot know yet (preview). Compares equal only to itself."""

    _instance: "_Unknown | None" = None

    def __new__(cls):
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNKNOWN"

    def __bool__(self) -> bool:  # an unknown is never silently truthy or falsy in a rule
        raise TypeError("an unknown value has no truth value; check `is UNKNOWN` first")


UNKNOWN = _Unknown()


def is_unknown(value: Any) -> bool:
    return value is UNKNOWN


def plain(value: Any) -> Any:
    """Proxied (or plain) properties → plain dicts/lists/scalars, unknown values → `UNKNOWN`."""
    if isinstance(value, str):
        return UNKNOWN if value in UNKNOWN_SENTINELS else value
    if isinstance(value, Mapping):
        out = {}
        for key in list(value):
            try:
                item = value[key]
            except UnknownValueError:
                item = UNKNOWN_STRING_VALUE
            out[key] = plain(item)
        return out
    if isinstance(value, Sequence) and not isinstance(value, (bytes, bytearray)):
        items = []
        for index in range(len(value)):
            try:
                item = value[index]
            except UnknownValueError:
                item = UNKNOWN_STRING_VALUE
            items.append(plain(item))
        return items
    return value


def get(props: Any, *path: str | int, default: Any = None) -> Any:
    """`props[path[0]][path[1]]...`; `UNKNOWN` as soon as a step is unknown, `default` when absent."""
    current = props
    for step in path:
        if current is UNKNOWN:
            return UNKNOWN
        if isinstance(step, int):
            if not isinstance(current, list) or step >= len(current):
                return default
            current = current[step]
        else:
            if not isinstance(current, dict) or step not in current:
                return default
            current = current[step]
        if current is None:
            return default
    return current


@dataclass
class Findings:
    """What one rule proved about one resource (or stack): violations, and what it could not decide."""

    violations: list[tuple[str, str | None]] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)

    def violation(self, message: str, urn: str | None = None) -> None:
        self.violations.append((message, urn))

    def undecided(self, where: str) -> None:
        if where not in self.unknown:
            self.unknown.append(where)

    def extend(self, other: "Findings") -> None:
        self.violations.extend(other.violations)
        for where in other.unknown:
            self.undecided(where)

    def report(self, report_violation) -> None:
        """Hand violations to the CLI; with none proved and something unknown, say so the CLI's way."""
        for message, urn in self.violations:
            report_violation(message, urn)
        if not self.violations and self.unknown:
            raise UnknownValueError(UNKNOWN_STRING_VALUE, [" and .".join(self.unknown)])


def config_value(args: Any, key: str, default: Any) -> Any:
    """A policy's config property (pack config or CLI `--policy-pack-config`), else the pack default."""
    try:
        config = args.get_config() or {}
    except AttributeError:
        config = {}
    value = config.get(key, default)
    return default if value is None else value
