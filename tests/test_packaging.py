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
