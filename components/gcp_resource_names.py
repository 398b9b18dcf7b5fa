"""The names GCP gives a service account or project-level custom role, from the inputs that create it.

Pure functions, importable without any provider SDK: the GCP components name their grants with them (so
that those are known in a first `pulumi preview`), and the policy pack recognises the same grants with them.
None means "cannot be told for certain now": an input that is not known text, or a legacy domain-scoped
project (`example.com:proj`), whose accounts follow another email pattern.
"""
from __future__ import annotations

from typing import Any

SERVICE_ACCOUNT_DOMAIN = "iam.gserviceaccount.com"


def _known_project(project: Any) -> str | None:
    return project if isinstance(project, str) and project and ":" not in project else None


def service_account_email(account_id: Any, project: Any) -> str | None:
    """`<account_id>@<project>.iam.gserviceaccount.com`."""
    project = _known_project(project)
    if project is None or not isinstance(account_id, str) or not account_id:
        return None
    return f"{account_id}@{project}.{SERVICE_ACCOUNT_DOMAIN}"


def custom_role_name(project: Any, role_id: Any) -> str | None:
    """`projects/<project>/roles/<role_id>`."""
    project = _known_project(project)
    if project is None or not isinstance(role_id, str) or not role_id:
        return None
    return f"projects/{project}/roles/{role_id}"
