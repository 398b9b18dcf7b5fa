"""Small helpers shared by the AWS components (awsx style: typed args, children under `parent=self`)."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pulumi

from .policy_documents import to_json

TYPE_PREFIX = "lse-custom-metrics:aws:"


def child_opts(parent: pulumi.Resource, **extra: Any) -> pulumi.ResourceOptions:
    """Options for a child: parented to the component (so it inherits its provider and aliases)."""
    return pulumi.ResourceOptions(parent=parent, **extra)


def json_document(builder: Callable[..., dict], *inputs: pulumi.Input[Any], **keywords: Any) -> pulumi.Output[str]:
    """`builder(*resolved inputs, **keywords)` as IAM JSON text, resolved once every input is known."""
    return pulumi.Output.all(*inputs).apply(lambda values: to_json(builder(*values, **keywords)))


def tags_input(tags: pulumi.Input[Mapping[str, pulumi.Input[str]]] | None) -> pulumi.Input[Mapping[str, Any]] | None:
    """Tags exactly as given; `None` and `{}` both mean "no tags" (so the provider sees no tags input)."""
    if tags is None or (isinstance(tags, Mapping) and not tags):
        return None
    return tags


def parsed(value: pulumi.Input[Any], parse: Callable[[Any], Any]) -> Any:
    """`parse(value)` now when the value is plain (bad input fails at construction, before any child is
    registered), or inside `apply` when it is only known later."""
    if isinstance(value, pulumi.Output):
        return value.apply(parse)
    if hasattr(value, "__await__"):
        return pulumi.Output.from_input(value).apply(parse)
    return parse(value)
