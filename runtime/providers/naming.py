"""Function names and the rule that finds a project's function.

A project's function is ``custom-metric-<project_id>-<unix ts>``. It is recognised by the name prefix
``custom-metric-<project_id>-`` followed by digits only **and** by the project id recorded with the
function (tag, label or ``function.json``), so project 1 never picks up project 12's
``custom-metric-12-...`` nor a ``custom-metric-1-2-...`` of a project called ``1-2``.
"""
from __future__ import annotations

import re
import time

from lse_custom_metrics.components.facts import FUNCTION_PREFIX

# Lambda allows 64 characters and Cloud Functions gen2 63 (DESIGN §5): the stricter one holds for all.
MAX_FUNCTION_NAME = 63
_PROJECT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
CHARACTERS_RULE = "use letters, digits, '-' or '_' (starting with a letter or digit)"


class InvalidProjectId(ValueError):
    """A project id that cannot name a function; ``rule`` says which rule it breaks (without the value)."""

    def __init__(self, project_id, rule: str, message: str | None = None):
        self.project_id, self.rule = project_id, rule
        super().__init__(message or f"project id {project_id!r} cannot be used in a function name: {rule}")


def project_key(project_id) -> str:
    """The project id as used in names; raises InvalidProjectId (a ValueError) naming the bad value."""
    if isinstance(project_id, bool) or not isinstance(project_id, (int, str)):
        raise InvalidProjectId(project_id, f"it must be an int or a string, got {type(project_id).__name__}",
                               f"project id must be an int or a string, got {project_id!r}")
    key = str(project_id).strip()
    if not key:
        raise InvalidProjectId(project_id, f"it is empty; {CHARACTERS_RULE}")
    if not _PROJECT_ID.match(key):
        raise InvalidProjectId(project_id, CHARACTERS_RULE)
    return key


def max_project_key_length(ts: float | None = None) -> int:
    """The longest project id whose function name fits (38 characters while timestamps have 10 digits)."""
    digits = len(str(int(time.time() if ts is None else ts)))
    return MAX_FUNCTION_NAME - len(FUNCTION_PREFIX) - 1 - digits


def check_project_id(project_id, ts: float | None = None) -> str:
    """``project_key`` plus the length rule: the id must give a function name of at most 63 characters."""
    key = project_key(project_id)
    longest = max_project_key_length(ts)
    if len(key) > longest:
        raise InvalidProjectId(
            project_id,
            f"it has {len(key)} characters, at most {longest} fit: the function name "
            f"{FUNCTION_PREFIX}<project>-<unix ts> would be longer than {MAX_FUNCTION_NAME} characters "
            "(Cloud Functions' limit)")
    return key


def function_name(project_id, ts: float | None = None) -> str:
    """``custom-metric-<project_id>-<unix ts>`` (ts defaults to now)."""
    key = project_key(project_id)
    name = f"{FUNCTION_PREFIX}{key}-{int(time.time() if ts is None else ts)}"
    if len(name) > MAX_FUNCTION_NAME:
        raise InvalidProjectId(
            project_id, f"the function name would be longer than {MAX_FUNCTION_NAME} characters",
            f"function name {name!r} is longer than {MAX_FUNCTION_NAME} characters; use a shorter project id")
    return name


def name_matches_project(name: str, project_id) -> bool:
    """True when ``name`` is ``custom-metric-<project_id>-<digits>``."""
    prefix = f"{FUNCTION_PREFIX}{project_key(project_id)}-"
    return name.startswith(prefix) and name[len(prefix):].isdigit()


def is_project_function(name: str, recorded_project, project_id) -> bool:
    """The full rule: name prefix + digits **and** the recorded project id are both the project's."""
    if recorded_project is None:
        return False
    return name_matches_project(name, project_id) and str(recorded_project) == project_key(project_id)


def project_from_name(name: str) -> str:
    """The project id a function name ``custom-metric-<project_id>-<digits>`` carries ('' if none)."""
    if not name.startswith(FUNCTION_PREFIX):
        return ""
    key, _, tail = name[len(FUNCTION_PREFIX):].rpartition("-")
    return key if key and tail.isdigit() and _PROJECT_ID.match(key) else ""


def name_timestamp(name: str) -> int:
    """The unix timestamp at the end of a function name (0 if there is none)."""
    tail = name.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else 0
