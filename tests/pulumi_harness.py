"""Run Pulumi programs and components under `pulumi.runtime.set_mocks`, recording everything.

Used by the AWS, GCP and policy tests. It records, per resource: type, name, inputs (as the provider
would receive them, secrets unwrapped and marked), the mocked outputs (realistic computed values:
ARNs, emails, role names, ids), parent URN and the dependency URNs the engine would see. It also records
invokes and the stack's exported outputs. Always `preview=False`: in preview, `apply` callbacks never run.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable

import pulumi
from google.protobuf import struct_pb2  # noqa: F401  (pulumi needs protobuf; kept explicit)
from pulumi.runtime import mocks as pmocks
from pulumi.runtime import rpc
from pulumi.runtime.stack import run_in_stack
from pulumi.runtime.sync_await import _sync_await

ACCOUNT = "123456789012"
PARTITION = "aws"
REGION = "us-east-1"
GCP_PROJECT = "acme-labeling"
GCP_PROJECT_NUMBER = "123456789012"
GCP_REGION = "us-central1"


@dataclass
class Recorded:
    type: str
    name: str
    urn: str
    inputs: dict
    outputs: dict
    id: str
    parent: str = ""
    dependencies: list[str] = field(default_factory=list)
    property_dependencies: dict[str, list[str]] = field(default_factory=dict)
    custom: bool = True


def _partition_for(inputs_or_state: dict) -> str:
    return PARTITION


def _aws_outputs(args: pmocks.MockResourceArgs, partition: str = PARTITION,
                 account: str = ACCOUNT) -> tuple[str, dict]:
    """Computed outputs as AWS returns them; ARNs in the partition and account the invokes report, so a
    test that mocks `aws-cn` or another account sees consistent ARNs everywhere."""
    t, inp = args.typ, dict(args.inputs)
    name = inp.get("name") or args.name
    arn_base = f"arn:{partition}:iam::{account}"
    if t == "aws:iam/role:Role":
        inp.setdefault("name", name)
        inp.update(arn=f"{arn_base}:role{inp.get('path', '/')}{name}", uniqueId="AROA" + "X" * 17,
                   createDate="2026-01-01T00:00:00Z")
        return name, inp
    if t == "aws:iam/policy:Policy":
        inp.setdefault("name", name)
        arn = f"{arn_base}:policy{inp.get('path', '/')}{name}"
        inp.update(arn=arn, policyId="ANPA" + "X" * 17, attachmentCount=1)
        return arn, inp
    if t == "aws:iam/user:User":
        inp.setdefault("name", name)
        inp.update(arn=f"{arn_base}:user{inp.get('path', '/')}{name}", uniqueId="AIDA" + "X" * 17)
        return name, inp
    if t == "aws:iam/accessKey:AccessKey":
        inp.update(secret="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", status=inp.get("status", "Active"),
                   sesSmtpPasswordV4="smtp-not-used", createDate="2026-01-01T00:00:00Z")
        return "AKIAIOSFODNN7EXAMPLE", inp
    if t == "aws:iam/instanceProfile:InstanceProfile":
        inp.setdefault("name", name)
        inp.update(arn=f"{arn_base}:instance-profile{inp.get('path', '/')}{name}", uniqueId="AIPA" + "X" * 17)
        return name, inp
    if t in ("aws:iam/rolePolicyAttachment:RolePolicyAttachment",
             "aws:iam/userPolicyAttachment:UserPolicyAttachment"):
        return f"{inp.get('role') or inp.get('user')}-{args.name}", inp
    if t == "aws:iam/rolePolicy:RolePolicy":
        return f"{inp.get('role')}:{name}", inp
    if t == "aws:iam/openIdConnectProvider:OpenIdConnectProvider":
        url = inp.get("url", "").removeprefix("https://")
        arn = f"{arn_base}:oidc-provider/{url}"
        inp.update(arn=arn)
        return arn, inp
    if t == "aws:lambda/function:Function":
        inp.setdefault("name", name)
        inp.update(arn=f"arn:{partition}:lambda:{REGION}:{account}:function:{name}",
                   invokeArn=f"arn:{partition}:apigateway:{REGION}:lambda:path/functions/x/invocations")
        return name, inp
    if t == "aws:cloudwatch/logGroup:LogGroup":
        inp.setdefault("name", name)
        inp.update(arn=f"arn:{partition}:logs:{REGION}:{account}:log-group:{name}")
        return name, inp
    return f"{args.name}-id", inp


def _gcp_outputs(args: pmocks.MockResourceArgs) -> tuple[str, dict]:
    t, inp = args.typ, dict(args.inputs)
    project = inp.get("project") or GCP_PROJECT
    if t == "gcp:serviceaccount/account:Account":
        email = f"{inp['accountId']}@{project}.iam.gserviceaccount.com"
        inp.update(email=email, name=f"projects/{project}/serviceAccounts/{email}",
                   uniqueId="1" * 21, member=f"serviceAccount:{email}", project=project)
        return f"projects/{project}/serviceAccounts/{email}", inp
    if t == "gcp:projects/iAMCustomRole:IAMCustomRole":
        name = f"projects/{project}/roles/{inp['roleId']}"
        inp.update(name=name, deleted=False, project=project, stage=inp.get("stage", "GA"))
        return name, inp
    if t == "gcp:projects/service:Service":
        inp.setdefault("project", project)
        return f"{project}/{inp['service']}", inp
    if t in ("gcp:projects/iAMMember:IAMMember", "gcp:serviceaccount/iAMMember:IAMMember"):
        inp.update(etag="BwX0000000=")
        target = inp.get("project") or inp.get("serviceAccountId")
        return f"{target}/{inp.get('role')}/{inp.get('member')}", inp
    return f"{args.name}-id", inp


class RecordingMocks(pulumi.runtime.Mocks):
    """Realistic computed outputs for the resource types this package creates."""

    def __init__(self, call_results: dict[str, dict] | None = None):
        self.calls: list[tuple[str, dict]] = []
        self.call_results = {
            "aws:index/getCallerIdentity:getCallerIdentity": {
                "accountId": ACCOUNT, "arn": f"arn:{PARTITION}:iam::{ACCOUNT}:user/ci",
                "userId": "AIDAEXAMPLE", "id": ACCOUNT},
            "aws:index/getPartition:getPartition": {
                "partition": PARTITION, "dnsSuffix": "amazonaws.com", "id": PARTITION,
                "reverseDnsPrefix": "com.amazonaws"},
            "aws:index/getRegion:getRegion": {
                "name": REGION, "region": REGION, "id": REGION,
                "endpoint": f"ec2.{REGION}.amazonaws.com", "description": "US East (N. Virginia)"},
            "gcp:organizations/getProject:getProject": {
                "projectId": GCP_PROJECT, "number": GCP_PROJECT_NUMBER, "name": GCP_PROJECT,
                "id": f"projects/{GCP_PROJECT}"},
        }
        if call_results:
            self.call_results.update(call_results)

    def new_resource(self, args: pmocks.MockResourceArgs):
        if args.typ.startswith("aws:"):
            return _aws_outputs(
                args,
                partition=self.call_results["aws:index/getPartition:getPartition"]["partition"],
                account=self.call_results["aws:index/getCallerIdentity:getCallerIdentity"]["accountId"])
        if args.typ.startswith("gcp:"):
            return _gcp_outputs(args)
        return f"{args.name}-id", dict(args.inputs)

    def call(self, args: pmocks.MockCallArgs):
        self.calls.append((args.token, dict(args.args)))
        if args.token not in self.call_results:
            raise AssertionError(f"unexpected provider invoke {args.token}: mocks cannot answer it")
        return self.call_results[args.token]


class RecordingMonitor(pmocks.MockMonitor):
    """MockMonitor that also keeps what the engine would see: parent, dependencies, outputs."""

    def __init__(self, mocks: RecordingMocks):
        super().__init__(mocks)
        self.recorded: dict[str, Recorded] = {}
        self.stack_outputs: dict[str, Any] = {}
        self.stack_urn: str | None = None

    def RegisterResource(self, request):
        response = super().RegisterResource(request)
        if request.type == "pulumi:pulumi:Stack":
            self.stack_urn = response.urn
            return response
        reg = self.resources[response.urn]
        inputs = rpc.deserialize_properties(request.object)
        self.recorded[response.urn] = Recorded(
            type=request.type, name=request.name, urn=response.urn, inputs=_plain(inputs),
            outputs=_plain(reg.state), id=reg.id, parent=request.parent,
            dependencies=list(request.dependencies),
            property_dependencies={k: list(v.urns) for k, v in request.propertyDependencies.items()},
            custom=bool(request.custom))
        return response

    def RegisterResourceOutputs(self, request):
        if request.urn == self.stack_urn:
            self.stack_outputs = rpc.deserialize_properties(request.outputs)
        return super().RegisterResourceOutputs(request)


def _plain(value: Any) -> Any:
    """Unwrap pulumi's secret envelopes into {'__secret__': value} so tests can see what is secret."""
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            return {"__secret__": _plain(value.get("value"))}
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


@dataclass
class Run:
    resources: list[Recorded]
    outputs: dict[str, Any]
    calls: list[tuple[str, dict]]
    monitor: RecordingMonitor

    def of_type(self, typ: str) -> list[Recorded]:
        return [r for r in self.resources if r.type == typ]

    def one(self, typ: str, name: str | None = None) -> Recorded:
        found = [r for r in self.of_type(typ) if name is None or r.name == name]
        assert len(found) == 1, f"expected one {typ} {name or ''}, got {[r.name for r in found]}"
        return found[0]

    def by_urn(self, urn: str) -> Recorded:
        return self.monitor.recorded[urn]


def run_pulumi(program: Callable[[], Any], *, config: dict[str, Any] | None = None,
               project: str = "lse-custom-metrics", stack: str = "test",
               call_results: dict[str, dict] | None = None, secret_keys: list[str] | None = None) -> Run:
    """Run `program` as a whole Pulumi program (its stack exports included) under mocks.

    `config` keys are full (`namespace:key`); non-string values are JSON-encoded as the CLI does.
    """
    mocks = RecordingMocks(call_results)
    monitor = RecordingMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project=project, stack=stack, preview=False, monitor=monitor)
    # set_mocks made a root stack already; run_in_stack makes its own, as the real entry point does,
    # so that `pulumi.export` lands on the stack outputs we record.
    pulumi.runtime.settings.ROOT.set(None)
    monitor.recorded.clear()
    encoded = {k: v if isinstance(v, str) else json.dumps(v) for k, v in (config or {}).items()}
    pulumi.runtime.set_all_config(encoded, secret_keys or [])
    _sync_await(run_in_stack(program))
    return Run(resources=list(monitor.recorded.values()), outputs=dict(monitor.stack_outputs),
               calls=list(mocks.calls), monitor=monitor)


def inventory(run: Run) -> list[dict]:
    """The reviewed-inventory form of a run: type, name, parent name and inputs, in a stable order."""
    by_urn = {r.urn: r for r in run.resources}
    rows = []
    for r in run.resources:
        parent = by_urn.get(r.parent)
        rows.append({"type": r.type, "name": r.name,
                     "parent": f"{parent.type}::{parent.name}" if parent else None,
                     "inputs": _normalise_inputs(r.inputs)})
    return sorted(rows, key=lambda row: (row["type"], row["name"]))


def _normalise_inputs(inputs: dict) -> dict:
    out = {}
    for k, v in sorted(inputs.items()):
        if k.startswith("__"):
            continue
        if isinstance(v, str) and v[:1] in "{[":
            try:  # policy documents: keep them as data so an IAM change is a readable diff
                v = json.loads(v)
            except ValueError:
                pass
        out[k] = v
    return out
