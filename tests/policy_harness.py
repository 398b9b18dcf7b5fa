"""Apply the policy pack to resources exactly as the Pulumi CLI would hand them over — without the CLI.

Two entry points:
- `validate(policy_name, resource_type, props, ...)`: one policy's own `validate`, called with a
  `ResourceValidationArgs` built the way `pulumi_policy`'s analyzer builds it from the engine's request:
  properties marshalled to a protobuf Struct (numbers become floats, secrets travel as signature objects),
  then `deserialize_properties(MessageToDict(...))` (secrets unwrapped) and `unknown_checking_proxy`
  (unknowns raise `UnknownValueError` on access).
- `apply_pack(run, ...)`: the whole pack applied to every resource a `tests/pulumi_harness.py` run recorded
  (inputs, via `Analyze`) and to the stack (outputs, parents and dependencies, via `AnalyzeStack`), through
  `pulumi_policy`'s own analyzer servicer — the object `PolicyPack` would serve over gRPC — after
  `Configure` with the config the CLI reconciles from the policies' schema defaults, the pack's
  `initial_config` and a `--policy-pack-config` file.

`preview=True` replays the run as a first `pulumi preview` would see it at worst: every input that depends on
another resource's output, and every output the provider computes, is unknown.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import json_format, struct_pb2
from pulumi.runtime.proto import analyzer_pb2 as proto
from pulumi_policy import PolicyResource, PolicyResourceOptions, ResourceValidationArgs, StackValidationArgs
import pulumi
from pulumi_policy.deserialize import (
    SPECIAL_SECRET_SIG,
    SPECIAL_SIG_KEY,
    deserialize_properties,
    serialize_properties,
)
from pulumi_policy.policy import PolicyCustomTimeouts, _NotApplicableError, _PolicyAnalyzerServicer
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError, unknown_checking_proxy

from lse_custom_metrics.policies import rules

from pulumi_harness import Recorded, Run

UNKNOWN = UNKNOWN_STRING_VALUE  # what the engine sends for a value it cannot know during preview
PACK_VERSION = "0.1.0"
_LEVELS = {"advisory": proto.ADVISORY, "mandatory": proto.MANDATORY, "disabled": proto.DISABLED,
           "remediate": proto.REMEDIATE}
_LEVEL_NAMES = {v: k for k, v in _LEVELS.items()}
_PREVIEW_PREFIX = "can't run policy"


def secret(value: Any) -> dict:
    """A secret input, in the harness's recorded form."""
    return {"__secret__": value}


def to_wire(value: Any) -> Any:
    """Recorded values → the engine's wire form (secret signature objects; unknown sentinels kept)."""
    if isinstance(value, dict):
        if set(value) == {"__secret__"}:
            return {SPECIAL_SIG_KEY: SPECIAL_SECRET_SIG, "value": to_wire(value["__secret__"])}
        return {k: to_wire(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_wire(v) for v in value]
    if isinstance(value, (pulumi.Asset, pulumi.Archive)):  # code archives travel as signature objects too
        return serialize_properties(value)
    return value


def to_struct(props: Mapping[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(to_wire(dict(props)))
    return struct


def cli_props(props: Mapping[str, Any]):
    """`props` as `args.props` looks inside a policy run by the CLI."""
    return unknown_checking_proxy(deserialize_properties(json_format.MessageToDict(to_struct(props))))


def resource_args(resource_type: str, props: Mapping[str, Any], *, name: str = "res",
                  config: Mapping[str, Any] | None = None) -> ResourceValidationArgs:
    urn = f"urn:pulumi:test::lse-custom-metrics::{resource_type}::{name}"
    opts = PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [], None)
    return ResourceValidationArgs(resource_type, cli_props(props), urn, name, opts, None,
                                  dict(config) if config else None)


@dataclass
class Outcome:
    """What one policy said about one resource."""

    violations: list[str] = field(default_factory=list)
    undecided: str | None = None  # the UnknownValueError message, when the policy could not decide

    @property
    def passed(self) -> bool:
        return not self.violations and self.undecided is None


def policy(name: str):
    found = [p for p in rules.POLICIES if p.name == name]
    assert len(found) == 1, f"no policy named {name}"
    return found[0]


def validate(policy_name: str, resource_type: str, props: Mapping[str, Any], *, name: str = "res",
             config: Mapping[str, Any] | None = None) -> Outcome:
    """Call one resource policy's `validate` with CLI-faithful args."""
    outcome = Outcome()
    args = resource_args(resource_type, props, name=name, config=config)
    try:
        policy(policy_name).validate(args, lambda message, urn=None: outcome.violations.append(message))
    except UnknownValueError as exc:
        outcome.undecided = exc.message
    return outcome


@dataclass
class StackItem:
    """One resource as a stack policy sees it: outputs, and which resources each property depends on."""

    type: str
    name: str
    outputs: dict[str, Any]
    property_dependencies: dict[str, list[str]] = field(default_factory=dict)  # property -> resource names

    @property
    def urn(self) -> str:
        return f"urn:pulumi:test::lse-custom-metrics::{self.type}::{self.name}"


def stack_args(items: list[StackItem], *, config: Mapping[str, Any] | None = None) -> StackValidationArgs:
    """`StackValidationArgs` as `AnalyzeStack` builds them: proxied outputs, dependencies as resources."""
    opts = PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [], None)
    resources = {item.name: PolicyResource(item.type, cli_props(item.outputs), item.urn, item.name, opts, None,
                                           None, [], {}) for item in items}
    for item in items:
        for key, names in item.property_dependencies.items():
            resources[item.name].property_dependencies[key] = [resources[n] for n in names]
    return StackValidationArgs(list(resources.values()), dict(config) if config else None)


def validate_stack(items: list[StackItem], *, config: Mapping[str, Any] | None = None) -> Outcome:
    """Call foundation-complete's `validate` with CLI-faithful stack args."""
    outcome = Outcome()
    try:
        policy("foundation-complete").validate(stack_args(items, config=config),
                                               lambda message, urn=None: outcome.violations.append(message))
    except UnknownValueError as exc:
        outcome.undecided = exc.message
    except _NotApplicableError as exc:
        outcome.undecided = f"not applicable: {exc.reason}"
    return outcome


# --- the whole pack, through the SDK's analyzer ---------------------------------------------------------

@dataclass(frozen=True)
class Diagnostic:
    policy: str
    level: str
    message: str
    urn: str

    @property
    def resource(self) -> str:
        return "::".join(self.urn.split("::")[-2:]) if self.urn else "<stack>"


@dataclass
class PackReport:
    diagnostics: list[Diagnostic]

    @property
    def violations(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if not d.message.startswith(_PREVIEW_PREFIX)]

    @property
    def undecided(self) -> list[Diagnostic]:
        """Policies that could not run on some resource because a value is unknown during preview."""
        return [d for d in self.diagnostics if d.message.startswith(_PREVIEW_PREFIX)]

    def names(self, level: str | None = None) -> set[str]:
        return {d.policy for d in self.violations if level is None or d.level == level}

    @property
    def mandatory(self) -> set[str]:
        return self.names("mandatory")

    @property
    def advisory(self) -> set[str]:
        return self.names("advisory")

    def by_policy(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for d in self.violations:
            out.setdefault(d.policy, []).append(d.resource)
        return {k: sorted(v) for k, v in sorted(out.items())}

    def explain(self) -> str:
        return "\n".join(f"[{d.level}] {d.policy} on {d.resource}: {d.message}" for d in self.diagnostics)


def parse_policy_pack_config(text: str) -> dict[str, dict[str, Any]]:
    """A `--policy-pack-config` file: policy name → level string, or object with `enforcementLevel` + props."""
    raw = json.loads(text)
    if not isinstance(raw, dict):
        raise ValueError("policy pack config must be a JSON object")
    parsed = {}
    for name, value in raw.items():
        if isinstance(value, str):
            parsed[name] = {"enforcementLevel": value}
        elif isinstance(value, dict):
            parsed[name] = dict(value)
        else:
            raise ValueError(f"policy pack config for '{name}' must be a level or an object")
    return parsed


def reconcile_config(user_config: Mapping[str, Mapping[str, Any]] | None = None
                     ) -> dict[str, tuple[str, dict[str, Any]]]:
    """What the CLI sends in `Configure`: schema defaults, then `initial_config`, then the user's file
    (each layer's "all" level first, then per-policy levels and properties)."""
    result: dict[str, tuple[str, dict[str, Any]]] = {}
    for p in rules.POLICIES:
        level = (p.enforcement_level or rules.ENFORCEMENT_LEVEL).value
        props = ({k: v["default"] for k, v in p.config_schema.properties.items() if "default" in v}
                 if p.config_schema else {})
        result[p.name] = (level, props)
    for layer in (rules.INITIAL_CONFIG, user_config or {}):
        layer = {k: ({"enforcementLevel": v} if isinstance(v, str) else dict(v)) for k, v in layer.items()}
        if "enforcementLevel" in layer.get("all", {}):
            result = {k: (layer["all"]["enforcementLevel"], v) for k, (_, v) in result.items()}
        for name, given in layer.items():
            level, props = result.get(name, ("advisory", {}))
            level = given.get("enforcementLevel", level)
            props = {**props, **{k: v for k, v in given.items() if k != "enforcementLevel"}}
            result[name] = (level, props)
    return result


def analyzer(user_config: Mapping[str, Mapping[str, Any]] | None = None) -> _PolicyAnalyzerServicer:
    servicer = _PolicyAnalyzerServicer(rules.PACK_NAME, PACK_VERSION, rules.POLICIES, rules.ENFORCEMENT_LEVEL,
                                       rules.INITIAL_CONFIG)
    request = proto.ConfigureAnalyzerRequest()
    for name, (level, props) in reconcile_config(user_config).items():
        request.policyConfig[name].enforcementLevel = _LEVELS[level]
        request.policyConfig[name].properties.update(props)
    servicer.Configure(request, None)
    return servicer


def _preview_inputs(resource: Recorded) -> dict[str, Any]:
    return {k: (UNKNOWN if resource.property_dependencies.get(k) else v) for k, v in resource.inputs.items()}


def _preview_outputs(resource: Recorded) -> dict[str, Any]:
    return {k: (UNKNOWN if k not in resource.inputs or resource.property_dependencies.get(k) else v)
            for k, v in resource.outputs.items()}


def _diagnostics(response) -> list[Diagnostic]:
    return [Diagnostic(d.policyName, _LEVEL_NAMES[d.enforcementLevel], d.message, d.urn)
            for d in response.diagnostics]


def analyze_resource(servicer, resource_type: str, props: Mapping[str, Any], urn: str, name: str,
                     parent: str = "") -> list[Diagnostic]:
    request = proto.AnalyzeRequest(type=resource_type, properties=to_struct(props), urn=urn, name=name,
                                   options=proto.AnalyzerResourceOptions(parent=parent))
    return [d if d.urn else Diagnostic(d.policy, d.level, d.message, urn)
            for d in _diagnostics(servicer.Analyze(request, None))]


def apply_pack(run: Run, *, config: Mapping[str, Mapping[str, Any]] | None = None,
               preview: bool = False) -> PackReport:
    """Every resource through `Analyze` (inputs), then the stack through `AnalyzeStack` (outputs)."""
    servicer = analyzer(config)
    diagnostics: list[Diagnostic] = []
    for resource in run.resources:
        inputs = _preview_inputs(resource) if preview else resource.inputs
        diagnostics += analyze_resource(servicer, resource.type, inputs, resource.urn, resource.name,
                                        resource.parent)
    stack = proto.AnalyzeStackRequest()
    for resource in run.resources:
        outputs = _preview_outputs(resource) if preview else resource.outputs
        item = stack.resources.add(type=resource.type, properties=to_struct(outputs), urn=resource.urn,
                                   name=resource.name, parent=resource.parent,
                                   dependencies=resource.dependencies)
        for key, urns in resource.property_dependencies.items():
            if urns:
                item.propertyDependencies[key].urns.extend(urns)
    diagnostics += _diagnostics(servicer.AnalyzeStack(stack, None))
    return PackReport(diagnostics)


# --- the AWS documents a run emits, for parliament and cloudsplaining ------------------------------------

_DOCUMENT_PROPERTIES = {
    "aws:iam/policy:Policy": ("policy",), "aws:iam/rolePolicy:RolePolicy": ("policy",),
    "aws:iam/userPolicy:UserPolicy": ("policy",), "aws:iam/groupPolicy:GroupPolicy": ("policy",),
    "aws:iam/role:Role": ("assumeRolePolicy",),
}


def emitted_aws_documents(run: Run) -> list[tuple[str, str, dict]]:
    """(resource name, property, document) for every IAM document a run hands to AWS."""
    found = []
    for resource in run.resources:
        for key in _DOCUMENT_PROPERTIES.get(resource.type, ()):
            value = resource.inputs.get(key)
            if value:
                found.append((resource.name, key, json.loads(value) if isinstance(value, str) else value))
        if resource.type == "aws:iam/role:Role":
            for i, inline in enumerate(resource.inputs.get("inlinePolicies") or []):
                if inline.get("policy"):
                    found.append((resource.name, f"inlinePolicies[{i}]", json.loads(inline["policy"])))
    return found
