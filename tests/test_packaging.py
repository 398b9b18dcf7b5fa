"""The installed distribution: one unique import name, extras that keep the core small."""
from __future__ import annotations

import email
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(ROOT)],
                   check=True, capture_output=True, text=True)
    (whl,) = out.glob("lse_custom_metrics-*.whl")
    return whl


def test_wheel_ships_every_part_under_one_import_name(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    top_level = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top_level == {"lse_custom_metrics"}
    for expected in ("lse_custom_metrics/handler/main.py",
                     "lse_custom_metrics/components/facts.py",
                     "lse_custom_metrics/runtime/providers/base.py",
                     "lse_custom_metrics/policies/PulumiPolicy.yaml"):
        assert expected in names, expected


def test_core_requirements_exclude_cloud_and_pulumi_sdks(wheel):
    with zipfile.ZipFile(wheel) as zf:
        meta_name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        meta = email.message_from_string(zf.read(meta_name).decode())
    requires = meta.get_all("Requires-Dist")
    core = {r.split("==")[0].strip() for r in requires if "extra ==" not in r}
    assert core == {"functions-framework", "click", "rich", "matplotlib", "psutil"}
    extras = set(meta.get_all("Provides-Extra"))
    assert extras == {"aws", "gcp", "iac", "dev"}
    by_extra = {}
    for r in requires:
        if "extra ==" in r:
            name, extra = r.split(";")[0].split("==")[0].strip(), r.split("extra ==")[1].strip(' "\'')
            by_extra.setdefault(extra, set()).add(name)
    assert by_extra["aws"] == {"boto3"}
    assert by_extra["iac"] == {"pulumi", "pulumi-aws", "pulumi-gcp", "pulumi-policy", "PyYAML"}
    assert {"google-cloud-functions", "google-auth", "google-cloud-logging"} == by_extra["gcp"]


def test_installed_wheel_does_not_collide_with_a_users_components_folder(wheel, tmp_path):
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = env_dir / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", str(wheel)], check=True)
    user_stack = tmp_path / "their-stack"
    (user_stack / "components").mkdir(parents=True)
    (user_stack / "components" / "__init__.py").write_text("OWNER = 'their stack'\n")
    probe = (
        "import components, lse_custom_metrics.components.facts as facts, "
        "lse_custom_metrics.handler.main as handler, lse_custom_metrics.runtime.providers.base as base\n"
        "print(components.OWNER)\n"
        "print(facts.AWS_EXECUTION_ROLE_NAME)\n"
        "print(handler.__file__.startswith(%r))\n" % str(env_dir)
    )
    result = subprocess.run([str(py), "-c", probe], cwd=user_stack, capture_output=True, text=True,
                            check=True)
    assert result.stdout.splitlines() == ["their stack", "LSE_CustomMetricsExecuteRole", "True"]


def test_installed_wheel_builds_both_foundations_from_a_users_stack(wheel, tmp_path):
    """A user's stack imports our components from the wheel (not this checkout) and builds them.

    The wheel goes into a fresh venv without dependencies; the dependencies (pulumi, providers) come from
    this test environment's site-packages, added as a plain path. A plain path runs none of its `.pth`
    files, so the editable install of this checkout stays invisible: every `lse_custom_metrics` module
    must load from the fresh venv.
    """
    import sysconfig

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = env_dir / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", str(wheel)], check=True)
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    Path(site, "test-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    user_stack = tmp_path / "their-stack"
    (user_stack / "components").mkdir(parents=True)
    (user_stack / "components" / "__init__.py").write_text("OWNER = 'their stack'\n")
    (user_stack / "stack.py").write_text('''
import sys
import pulumi

types = []

class Mocks(pulumi.runtime.Mocks):
    def new_resource(self, args):
        types.append(args.typ)
        outputs = dict(args.inputs, arn=f"arn:aws:iam::123456789012:x/{args.name}",
                       email=f"{args.name}@acme.iam.gserviceaccount.com", name=args.inputs.get("name", args.name))
        return f"{args.name}-id", outputs
    def call(self, args):
        return {"number": "123456789"}

pulumi.runtime.set_mocks(Mocks(), preview=False)

import components
from lse_custom_metrics.components import (AwsCustomMetricsFoundation, AwsCustomMetricsFoundationArgs,
                                           GcpCustomMetricsFoundation, GcpCustomMetricsFoundationArgs)
from lse_custom_metrics.policies.rules import POLICIES

@pulumi.runtime.test
def build():
    aws = AwsCustomMetricsFoundation("lse", AwsCustomMetricsFoundationArgs(
        deployment="eks-node-role", node_role="nodes", region="eu-west-1", partition="aws",
        account_id="123456789012"))
    gcp = GcpCustomMetricsFoundation("lse-gcp", GcpCustomMetricsFoundationArgs(
        deployment="gke-node", project="acme-labeling",
        node_service_account_email="nodes@acme-labeling.iam.gserviceaccount.com"))
    return pulumi.Output.all(aws.urn, gcp.urn)

build()
print(components.OWNER)
print(types.count("aws:iam/rolePolicyAttachment:RolePolicyAttachment"), types.count("gcp:projects/iAMCustomRole:IAMCustomRole"))
print(len(POLICIES) > 10)
loaded = [m.__file__ for name, m in sys.modules.items() if name.startswith("lse_custom_metrics") and
          getattr(m, "__file__", None)]
print(all(path.startswith(sys.argv[1]) for path in loaded), len(loaded) > 20)
''')
    result = subprocess.run([str(py), "stack.py", str(env_dir)], cwd=user_stack, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["their stack", "1 1", "True", "True True"]


def test_the_pulumi_project_uses_the_readmes_environment_and_the_iac_extra():
    import yaml

    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    assert project["name"] == "lse-custom-metrics"
    assert project["runtime"] == {"name": "python", "options": {"toolchain": "pip", "virtualenv": ".venv"}}
    readme = (ROOT / "README.md").read_text()
    assert "python3 -m venv .venv" in readme
    # the CI example and the stack steps fill that same environment with the program's requirements
    assert "python -m venv .venv && .venv/bin/pip install -q -r requirements.txt" in readme
    for cloud in ("aws", "gcp"):
        start = readme.index(f"pulumi stack init {cloud}")
        steps = readme[start:readme.index(f"\npulumi up -s {cloud}", start)]
        assert "\npulumi install " in steps
    assert (ROOT / "requirements.txt").read_text().splitlines()[-1] == "-e .[iac]"
