"""Names and permission sets fixed by LSE's custom-metric docs (pure data, no Pulumi import).

Shared by the components, the program, the policy pack and the tests, so each fact lives in one place.
"""
from __future__ import annotations

# --- shared -----------------------------------------------------------------------------------------
FUNCTION_PREFIX = "custom-metric-"
CONFIG_NAMESPACE = "lse-custom-metrics"
HELM_RELEASE_DEFAULT = "lse"  # helm chart service accounts: <release>-ls-app, <release>-ls-rqworker
KSA_SUFFIXES = ("-ls-app", "-ls-rqworker")

# --- AWS --------------------------------------------------------------------------------------------
AWS_EXECUTION_ROLE_NAME = "LSE_CustomMetricsExecuteRole"
AWS_INTERACT_POLICY_NAME = "LSE_AllowInteractLambda"
AWS_IRSA_ROLE_NAME = "LSE_ServiceAccountApp"
AWS_LAMBDA_FUNCTION_ACTIONS = (
    "lambda:CreateFunction",
    "lambda:UpdateFunctionCode",
    "lambda:InvokeFunction",
    "lambda:GetFunction",
    "lambda:DeleteFunction",
    "lambda:TagResource",
    "lambda:ListTags",
)
AWS_INTERACT_LOGS_ACTIONS = (
    "logs:CreateLogGroup",
    "logs:PutRetentionPolicy",
    "logs:TagResource",
    "logs:StartQuery",
    "logs:GetQueryResults",
)
AWS_DEPLOYMENTS = ("ec2-compose", "ec2-instance-profile", "eks-oidc", "eks-node-role")
# LSE's environment variables for Lambda (docs' order for docker-compose).
AWS_ENV_ACCESS_KEY_ID = "AWS_ACCESS_KEY_ID"
AWS_ENV_SECRET_ACCESS_KEY = "AWS_SECRET_ACCESS_KEY"
AWS_ENV_LAMBDA_REGION = "LS_LAMBDA_REGION_CUSTOM_METRICS"
AWS_ENV_LAMBDA_ROLE = "LS_LAMBDA_ROLE_CUSTOM_METRICS"
# Annotation the EKS pod identity webhook reads on a Kubernetes service account (IRSA).
AWS_IRSA_ANNOTATION = "eks.amazonaws.com/role-arn"

# --- GCP --------------------------------------------------------------------------------------------
GCP_RUNTIME_SA_ID = "lse-custom-metrics-runtime"
GCP_APP_SA_ID = "lse-app"
GCP_DEPLOYER_ROLE_ID = "LSE_CustomMetricsDeployer"
GCP_DEPLOYER_ROLE_TITLE = "LSE Custom Metrics Deployer"
GCP_DEPLOYER_ROLE_DESCRIPTION = (
    "Allows Label Studio Enterprise to deploy and invoke custom metric Cloud Functions"
)
# The docs' twelve permissions, in the docs' order.
GCP_DEPLOYER_PERMISSIONS = (
    "cloudfunctions.functions.create",
    "cloudfunctions.functions.update",
    "cloudfunctions.functions.delete",
    "cloudfunctions.functions.get",
    "cloudfunctions.functions.list",
    "cloudfunctions.functions.generateUploadUrl",
    "storage.objects.get",
    "storage.objects.create",
    "run.routes.invoke",
    "logging.logEntries.list",
    "logging.logs.list",
    "iam.serviceAccounts.actAs",
)
GCP_ACT_AS_PERMISSION = "iam.serviceAccounts.actAs"
# The docs' alternative to the custom role.
GCP_PREDEFINED_DEPLOYER_ROLES = (
    "roles/cloudfunctions.developer",
    "roles/run.invoker",
    "roles/storage.objectAdmin",
    "roles/logging.viewer",
    "roles/iam.serviceAccountUser",
)
# The docs' six APIs plus iam, which service-account and custom-role creation need.
GCP_REQUIRED_SERVICES = (
    "cloudfunctions.googleapis.com",
    "cloudbuild.googleapis.com",
    "storage.googleapis.com",
    "logging.googleapis.com",
    "artifactregistry.googleapis.com",
    "run.googleapis.com",
    "iam.googleapis.com",
)
GCP_RUNTIME_SA_ROLES = ("roles/logging.logWriter",)
# Since 2024, gen2 builds run as the Compute default service account unless told otherwise.
GCP_BUILD_SA_ROLES = (
    "roles/logging.logWriter",
    "roles/storage.objectViewer",
    "roles/artifactregistry.writer",
)
GCP_DEPLOYMENTS = ("gce-vm", "gke-workload-identity", "gke-node")
GCP_DEFAULT_REGION = "us-central1"

# --- LSE's fixed function runtime ----------------------------------------------------------------------
RUNTIME_PYTHON = "3.13"
LAMBDA_RUNTIME = "python3.13"
GCF_RUNTIME = "python313"
MEMORY_MB = 256
TIMEOUT_S = 60
MAX_INSTANCES = 1
GCF_INGRESS = "ALLOW_INTERNAL_ONLY"
GCF_ENTRY_POINT = "agreement_handler"
LAMBDA_HANDLER = "main.lambda_handler"
