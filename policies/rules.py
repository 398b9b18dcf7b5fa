"""The CrossGuard policies of the `lse-custom-metrics` pack, ready to hand to `PolicyPack`.

Importing this module builds `Policy` objects only; it never constructs a `PolicyPack` (whose constructor
starts a gRPC server and never returns) — `policies/__main__.py` does that, under the Pulumi CLI.

Every policy is mandatory unless marked advisory; each level can be overridden per policy (or for "all")
with `pulumi preview --policy-pack policies --policy-pack-config config.json`, and the options below (the
function prefix, the execution role name, ...) are per-policy config properties with these defaults.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from lse_custom_metrics.components.facts import (
    AWS_EXECUTION_ROLE_NAME,
    AWS_INTERACT_POLICY_NAME,
    FUNCTION_PREFIX,
    GCP_DEPLOYER_ROLE_ID,
    GCP_RUNTIME_SA_ID,
)

from . import aws_rules, function_rules, gcp_rules, stack_rules
from .props import Findings, config_value, plain

PACK_NAME = "lse-custom-metrics"
ENFORCEMENT_LEVEL = EnforcementLevel.MANDATORY

# --- config options (JSON schema of one property each; the CLI fills in the defaults) ------------------
PREFIX = {"prefix": {
    "type": "string", "default": FUNCTION_PREFIX, "pattern": "^[A-Za-z0-9_-]+$",
    "description": "Name prefix of the metric functions (LSE's Lambda Prefix); their log groups are "
                   "/aws/lambda/<prefix>*."}}
EXECUTION_ROLE_NAME = {"executionRoleName": {
    "type": "string", "default": AWS_EXECUTION_ROLE_NAME,
    "description": "Name of the IAM role the metric functions run as."}}
ALLOWED_STAR_ACTIONS = {"allowedActions": {
    "type": "array", "items": {"type": "string"}, "default": ["lambda:ListFunctions"],
    "description": "Actions allowed on Resource \"*\" (those without resource-level permissions); set the "
                   "same list on iam-wildcard-resource-only-listfunctions and lambda-actions-scoped-to-prefix."}}
ACCOUNT_WIDE_CREATE_LOG_GROUP = {"allowAccountWideCreateLogGroup": {
    "type": "boolean", "default": True,
    "description": "Accept the docs' execution-role statement logs:CreateLogGroup on "
                   "arn:<partition>:logs:<region>:<account>:* (false: require pre-created log groups)."}}
DEPLOYER_ROLE_ID = {"deployerRoleId": {
    "type": "string", "default": GCP_DEPLOYER_ROLE_ID,
    "description": "Role id of LSE's custom deployer role."}}
FOUNDATION_NAMES = {
    "runtimeServiceAccountId": {"type": "string", "default": GCP_RUNTIME_SA_ID,
                                "description": "Account id of the functions' runtime service account."},
    "interactPolicyName": {"type": "string", "default": AWS_INTERACT_POLICY_NAME,
                           "description": "Name of the policy LSE's identity gets (for messages)."},
}

ResourceCheck = Callable[..., Findings]


def _defaults(options: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    return {key: schema["default"] for key, schema in options.items()}


def _resource_policy(name: str, description: str, check: ResourceCheck, *, advisory: bool = False,
                     options: Mapping[str, Mapping[str, Any]] | None = None) -> ResourceValidationPolicy:
    options = dict(options or {})
    defaults = _defaults(options)

    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        config = {key: config_value(args, key, default) for key, default in defaults.items()}
        findings = check(args.resource_type, plain(args.props), config, name=args.name)
        findings.report(report_violation)

    validate.__name__ = f"validate_{name.replace('-', '_')}"
    return ResourceValidationPolicy(
        name=name, description=description, validate=validate,
        enforcement_level=EnforcementLevel.ADVISORY if advisory else EnforcementLevel.MANDATORY,
        config_schema=PolicyConfigSchema(properties=options) if options else None)


def _validate_foundation_complete(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    defaults = _defaults({**PREFIX, **EXECUTION_ROLE_NAME, **DEPLOYER_ROLE_ID, **FOUNDATION_NAMES})
    config = {key: config_value(args, key, default) for key, default in defaults.items()}
    resources = [stack_rules.StackResource(
        type=r.resource_type, name=r.name, urn=r.urn, props=plain(r.props),
        property_dependencies={key: [d.urn for d in deps] for key, deps in r.property_dependencies.items()})
        for r in args.resources]
    if not any(r.type.startswith(("aws:", "gcp:")) for r in resources):
        args.not_applicable("the stack has no AWS or GCP resources")
    stack_rules.check_foundation_complete(resources, config).report(report_violation)


POLICIES = [
    _resource_policy(
        "iam-no-wildcard-actions",
        "No `*` or `service:*` (or any wildcard / NotAction) action in an IAM policy, role, user, group or trust "
        "policy; no attached AWS-managed policy known to grant wildcard actions (AdministratorAccess, "
        "PowerUserAccess, ReadOnlyAccess, *FullAccess, SecretsManagerReadWrite, AWSLambdaExecute, the "
        "job-function policies, ...); and no AWS-managed policy at all on the execution role (the pack cannot "
        "read their documents). Fix: list the exact actions; LSE needs only those of LSE_AllowInteractLambda "
        "and the execution role's logs statements.",
        aws_rules.check_no_wildcard_actions, options=EXECUTION_ROLE_NAME),
    _resource_policy(
        "iam-wildcard-resource-only-listfunctions",
        "`Resource: \"*\"` (or NotResource, or an ARN whose resource part is only wildcards such as "
        "`arn:aws:s3:::*` or `arn:aws:lambda:*:*:*`) only for lambda:ListFunctions, which has no resource-level "
        "permissions (and the docs' execution-role logs:CreateLogGroup on `arn:<partition>:logs:<region>:"
        "<account>:*`, unless allowAccountWideCreateLogGroup is false). Fix: scope every other action to ARNs of "
        "LSE's functions and log groups, in a statement of its own.",
        aws_rules.check_wildcard_resource_only_listfunctions,
        options={**ALLOWED_STAR_ACTIONS, **ACCOUNT_WIDE_CREATE_LOG_GROUP}),
    _resource_policy(
        "lambda-actions-scoped-to-prefix",
        "Function-level Lambda actions only on `function:<prefix>*`, CloudWatch Logs actions only on "
        "`log-group:/aws/lambda/<prefix>*` (prefix from this policy's config, default `custom-metric-`); the "
        "`allowedActions` (default lambda:ListFunctions; keep it equal to iam-wildcard-resource-only-"
        "listfunctions') have no resource-level permissions and are exempt. Fix: "
        "use the prefix LSE deploys with in every Lambda/Logs resource ARN, with your account id.",
        aws_rules.check_lambda_actions_scoped_to_prefix,
        options={**PREFIX, **ACCOUNT_WIDE_CREATE_LOG_GROUP, **ALLOWED_STAR_ACTIONS}),
    _resource_policy(
        "passrole-only-execution-role",
        "iam:PassRole only on the metric functions' execution role (`LSE_CustomMetricsExecuteRole` by default). "
        "Fix: set the statement's Resource to that role's exact ARN, no wildcards.",
        aws_rules.check_passrole_only_execution_role, options=EXECUTION_ROLE_NAME),
    _resource_policy(
        "execution-role-trusts-lambda-only",
        "The execution role — the role named `executionRoleName` (default `LSE_CustomMetricsExecuteRole`; set "
        "it if you renamed the role) — may be assumed by the Lambda service only, with sts:AssumeRole. Other "
        "roles that trust Lambda (Lambda@Edge, other functions) are not judged. Fix: make its trust policy a "
        "single Allow of sts:AssumeRole to Service lambda.amazonaws.com.",
        aws_rules.check_execution_role_trusts_lambda_only, options=EXECUTION_ROLE_NAME),
    _resource_policy(
        "irsa-trust-pinned",
        "A web-identity trust must name one IAM OIDC provider per statement and pin, with StringEquals, "
        "`<issuer>:sub` to exact subjects (no wildcards) and `<issuer>:aud` to exact audiences. For an EKS "
        "cluster (IRSA, `oidc.eks.<region>.amazonaws.com/id/...`) the subjects are "
        "`system:serviceaccount:<namespace>:<ksa>` and the audience `sts.amazonaws.com`; for GitHub Actions "
        "(`token.actions.githubusercontent.com`) the audience is `sts.amazonaws.com`. Fix: list LSE's app and "
        "rqworker service accounts (or your CI's exact repo/branch subjects) and add the audience condition.",
        aws_rules.check_irsa_trust_pinned),
    _resource_policy(
        "iam-trust-no-wildcard-principal",
        "No role trust policy lets every principal assume the role: Principal `*`, `{\"AWS\": \"*\"}` (or any "
        "wildcard AWS/Service principal), or NotPrincipal in an Allow, unless a condition pins the caller "
        "(StringEquals on aws:PrincipalAccount or aws:PrincipalOrgID, exact-account aws:PrincipalArn, or "
        "ForAnyValue aws:PrincipalOrgPaths). Web-identity trusts are irsa-trust-pinned's. Fix: name the "
        "account, role or service that needs the role.",
        aws_rules.check_trust_no_wildcard_principal),
    _resource_policy(
        "no-static-access-keys",
        "Advisory: a long-lived IAM access key (or GCP service-account key) is created. Fix: prefer the "
        "`ec2-instance-profile` or `eks-oidc` deployment (GCP: `gce-vm` / `gke-workload-identity`), which need "
        "no keys; otherwise rotate the key and keep it a secret.",
        aws_rules.check_no_static_access_keys, advisory=True),
    _resource_policy(
        "gcp-deployer-role-allowlist",
        "LSE's custom deployer role (and any custom role with cloudfunctions permissions) holds only the twelve "
        "permissions LSE documents. Fix: remove every other permission from `permissions`.",
        gcp_rules.check_gcp_deployer_role_allowlist, options=DEPLOYER_ROLE_ID),
    _resource_policy(
        "gcp-no-primitive-roles",
        "No primitive role (roles/owner, roles/editor, roles/viewer) in any IAM member, binding or policy. Fix: "
        "grant LSE_CustomMetricsDeployer or the documented predefined roles.",
        gcp_rules.check_gcp_no_primitive_roles),
    _resource_policy(
        "gcp-no-public-members",
        "No IAM grant to allUsers or allAuthenticatedUsers, on any resource. Fix: grant the LSE service account "
        "instead.",
        gcp_rules.check_gcp_no_public_members),
    _resource_policy(
        "gcp-iam-non-authoritative",
        "No authoritative IAMBinding/IAMPolicy on projects, folders, organizations or service accounts: they "
        "remove grants this stack does not list. Fix: use one IAMMember per member and role.",
        gcp_rules.check_gcp_iam_non_authoritative),
    _resource_policy(
        "gcp-services-kept-on-destroy",
        "Every projects.Service sets disable_on_destroy=False explicitly, so destroying this stack never switches "
        "an API off for the rest of the project. Fix: pass disable_on_destroy=False.",
        gcp_rules.check_gcp_services_kept_on_destroy),
    _resource_policy(
        "gcp-workload-identity-member-format",
        "roles/iam.workloadIdentityUser is granted on a service account only, to exact members "
        "`serviceAccount:<project>.svc.id.goog[<namespace>/<ksa>]` (one per Kubernetes service account, no "
        "wildcards). Fix: grant it on the LSE app service account for LSE's app and rqworker KSAs.",
        gcp_rules.check_gcp_workload_identity_member_format),
    _resource_policy(
        "metric-function-runtime-limits",
        "Metric functions (named `<prefix>*`) run as LSE runs them: Python 3.13, 256 MB, 60 s, one instance "
        "(Lambda reservedConcurrentExecutions=1, Cloud Functions maxInstanceCount=1), internal-only ingress on "
        "Cloud Functions, and no public invoker (lambda.Permission principal `*`, function URL without auth, "
        "run.invoker/cloudfunctions.invoker for allUsers/allAuthenticatedUsers). Fix: set those values and "
        "remove public grants.",
        function_rules.check_metric_function_runtime_limits, options=PREFIX),
    _resource_policy(
        "actas-scoped",
        "Advisory: iam.serviceAccounts.actAs granted project-wide (in a custom role or roles/iam."
        "serviceAccountUser on the project) lets LSE deploy as any service account. Fix: set "
        "`scopeActAsToRuntimeServiceAccount: true` (roles/iam.serviceAccountUser on the runtime account only).",
        gcp_rules.check_actas_scoped, advisory=True),
    StackValidationPolicy(
        name="foundation-complete",
        description="An AWS stack contains the Lambda execution role and the interact policy (attached, passing "
                    "that role); a GCP stack enables the seven APIs and contains the runtime service account "
                    "(with logWriter) and the deployer role granted (or the documented predefined roles). Fix: "
                    "build the stack from AwsCustomMetricsFoundation / GcpCustomMetricsFoundation.",
        validate=_validate_foundation_complete,
        enforcement_level=EnforcementLevel.MANDATORY,
        config_schema=PolicyConfigSchema(properties={**PREFIX, **EXECUTION_ROLE_NAME, **DEPLOYER_ROLE_ID,
                                                     **FOUNDATION_NAMES})),
]

POLICY_NAMES = [policy.name for policy in POLICIES]
ADVISORY_POLICIES = [p.name for p in POLICIES if p.enforcement_level == EnforcementLevel.ADVISORY]

# Programmatic pack config: the prefix (and names) each policy starts from; `--policy-pack-config` overrides.
INITIAL_CONFIG: dict[str, dict[str, Any]] = {
    policy.name: _defaults(policy.config_schema.properties)
    for policy in POLICIES if policy.config_schema is not None
}
