"""`lse-metrics`: exit codes and messages, every command, and end to end through the local provider."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from click.testing import CliRunner

import lse_custom_metrics.runtime.providers as providers
from fake_provider import FakeProvider
from lse_custom_metrics.runtime.cli import main
from lse_custom_metrics.runtime.export import EXPORT_HINT

ROOT = Path(__file__).resolve().parents[1]
EXPORTS = ROOT / "examples" / "exports"
METRICS = ROOT / "examples" / "metrics"
SENTIMENT = EXPORTS / "sentiment_3annotators.json"
LEOKA = EXPORTS / "leoka_lse_ner_taxonomy_agreement_excerpt.json"
ANNOTATIONS = ROOT / "examples" / "annotations"


def cli(*args, env=None):
    result = CliRunner().invoke(main, [str(a) for a in args], env=env, catch_exceptions=False)
    return result


@pytest.fixture
def fake(monkeypatch):
    provider = FakeProvider()
    monkeypatch.setattr(providers, "get_provider", lambda name=None, **options: provider)
    return provider


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A private state directory for the local provider."""
    monkeypatch.setenv("LSE_METRICS_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CUSTOM_METRIC_PROVIDER", raising=False)
    return tmp_path / "home"


# --- with the in-process fake provider ---------------------------------------------------------------

def test_score_writes_outputs_and_prints_summary(fake, tmp_path):
    result = cli("score", SENTIMENT, "--metric", METRICS / "choices_weighted.py", "--out", tmp_path / "o")
    assert result.exit_code == 0, result.output
    document = json.loads((tmp_path / "o" / "agreement.json").read_text())
    assert document["project"] == "4242" and document["metric"]["provider"] == "fake"
    assert document["metric"]["function"].startswith("custom-metric-4242-")
    assert document["summary"]["tasks"] == 8 and document["summary"]["pairs"] == 19
    assert "Agreement — project 4242" in result.output and "Annotators" in result.output
    assert f"wrote {tmp_path / 'o' / 'agreement.json'}" in result.output.replace("\n", "")


def test_mixed_projects_use_the_first_tasks_project_and_say_so(fake, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = cli("score", LEOKA, "--metric", METRICS / "lse_ner_taxonomy.py")
    assert result.exit_code == 0, result.output
    assert "the export mixes projects 58506, 58512, 58513; scored as project 58506" in " ".join(result.output.split())
    assert (tmp_path / "agreement-58506" / "agreement.json").is_file()
    assert list(fake.functions) == ["58506"]


def test_export_without_project_needs_project_option(fake, tmp_path):
    doclang = EXPORTS / "sdk_doclang_rect_textarea.json"
    result = cli("score", doclang, "--metric", METRICS / "result_overlap.py", "--out", tmp_path)
    assert result.exit_code == 2
    assert "the export has no `project` field; pass --project ID" in " ".join(result.output.split())
    result = cli("score", doclang, "--metric", METRICS / "result_overlap.py", "--out", tmp_path, "--project", "77")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "agreement.json").read_text())["project"] == "77"


def test_bad_export_exits_2_naming_file_and_task(fake, tmp_path):
    export = tmp_path / "min.json"
    export.write_text(json.dumps([{"id": 3, "annotator": 1, "annotation_id": 4, "sentiment": "Positive"}]))
    result = cli("score", export, "--metric", METRICS / "choices_weighted.py", "--out", tmp_path / "o")
    assert result.exit_code == 2
    text = " ".join(result.output.split())
    assert f"{export}: task #0 (id 3): looks like a JSON_MIN export" in text and "not JSON_MIN, CSV or TSV" in text
    assert not (tmp_path / "o").exists() and fake.functions == {}


@pytest.mark.parametrize("source, message", [
    ("def agreement(a, b, per_label=False):\n    return (\n", "line 2: SyntaxError"),
    ("def score(a, b):\n    return 1.0\n", "defines no top-level function `agreement("),
])
def test_bad_metric_exits_2(fake, tmp_path, source, message):
    metric = tmp_path / "metric.py"
    metric.write_text(source)
    result = cli("score", SENTIMENT, "--metric", metric, "--out", tmp_path / "o")
    assert result.exit_code == 2
    assert "bad metric file:" in result.output and message in " ".join(result.output.split())
    assert fake.functions == {}


NOT_YET = ("the {0!r} provider ({1}) is not implemented in this version of lse-custom-metrics yet; use --provider "
           "local (or CUSTOM_METRIC_PROVIDER=local) to run the same function on this machine")


@pytest.mark.parametrize("args, env, source", [
    (["--provider", "aws"], {}, "provider 'aws' (--provider)"),
    ([], {"CUSTOM_METRIC_PROVIDER": "gcp"}, "provider 'gcp' (from the CUSTOM_METRIC_PROVIDER environment variable)"),
    ([], {"CUSTOM_METRIC_PROVIDER": "aws"}, "provider 'aws' (from the CUSTOM_METRIC_PROVIDER environment variable)"),
    # an explicit --provider wins over the variable, and is named as the source
    (["--provider", "gcp"], {"CUSTOM_METRIC_PROVIDER": "aws"}, "provider 'gcp' (--provider)"),
])
def test_unavailable_provider_exits_3_with_a_clear_message(tmp_path, args, env, source):
    result = cli("score", SENTIMENT, "--metric", METRICS / "choices_weighted.py", "--out", tmp_path, *args, env=env)
    chosen = "aws" if "'aws'" in source else "gcp"
    cloud = {"aws": "AWS Lambda", "gcp": "Google Cloud Functions"}[chosen]
    assert (result.exit_code, result.output) == (
        3, f"Error: {source} is not available: {NOT_YET.format(chosen, cloud)}\n")
    assert not (tmp_path / "agreement.json").exists()


def test_unusable_state_folder_is_a_provider_error_naming_the_variable(tmp_path, monkeypatch):
    monkeypatch.delenv("CUSTOM_METRIC_PROVIDER", raising=False)
    monkeypatch.setenv("LSE_METRICS_HOME", "/proc/lse-metrics-state")
    result = cli("status", "--project", "3")
    assert (result.exit_code, result.output) == (
        3, "Error: provider 'local' (the default: no --provider, CUSTOM_METRIC_PROVIDER unset) is not available: "
           "cannot use the state folder /proc/lse-metrics-state: cannot create /proc/lse-metrics-state/functions: "
           "No such file or directory (set LSE_METRICS_HOME to a folder you can write)\n")


@pytest.mark.parametrize("command", [
    ["score", SENTIMENT, "--metric", METRICS / "choices_weighted.py"],
    ["status", "--project", "3"],
    ["list"],
])
def test_unknown_provider_variable_is_a_bad_option(tmp_path, monkeypatch, command):
    monkeypatch.chdir(tmp_path)
    result = cli(*command, env={"CUSTOM_METRIC_PROVIDER": "azure"})
    assert result.exit_code == 2
    assert result.output == ("Error: CUSTOM_METRIC_PROVIDER='azure' is not a provider: allowed values are local, "
                             "aws, gcp (unset it to use local)\n")
    assert list(tmp_path.iterdir()) == []


def test_management_commands_delegate_to_the_provider(fake, tmp_path):
    assert "NotDeployed" in cli("status", "--project", "8").output
    deployed = cli("deploy", "--project", "8", "--metric", METRICS / "choices_weighted.py")
    assert deployed.exit_code == 0 and deployed.output.startswith("created custom-metric-8-")
    assert " on fake (Active), code sha256 " in deployed.output
    again = cli("deploy", "--project", "8", "--metric", METRICS / "choices_weighted.py")
    assert again.output.startswith("unchanged custom-metric-8-")
    assert cli("status", "--project", "8").output.strip() == "Active"
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    export = json.loads(SENTIMENT.read_text())
    a.write_text(json.dumps(export[3]["annotations"][0]))  # Positive
    b.write_text(json.dumps(export[3]["annotations"][2]))  # Neutral
    invoked = cli("invoke", "--project", "8", a, b)
    assert invoked.exit_code == 0 and json.loads(invoked.output) == {"score": 0.5}
    assert "custom-metric-8-" in cli("list").output
    assert "1 requests" in cli("logs", "--project", "8").output
    assert "deleted the function of project 8" in cli("delete", "--project", "8").output
    assert "has no function" in cli("delete", "--project", "8").output
    listed = cli("list")
    assert (listed.exit_code, listed.output) == (0, "no functions on fake\n")


def test_provider_failing_midway_exits_3_without_outputs(fake, tmp_path, monkeypatch):
    calls = []

    def broken(project_id, payload):
        calls.append(1)
        raise providers.ProviderError("the function's state directory vanished")

    monkeypatch.setattr(fake, "invoke", broken)
    result = cli("score", SENTIMENT, "--metric", METRICS / "choices_weighted.py", "--out", tmp_path / "o")
    assert result.exit_code == 3
    assert "scoring stopped, the provider failed: the function's state directory vanished" in " ".join(result.output.split())
    assert not (tmp_path / "o").exists() and len(calls) == 1


def test_export_error_after_scoring_started_exits_2_without_outputs(fake, tmp_path):
    tasks = json.loads(SENTIMENT.read_text())
    del tasks[5]["annotations"][0]["result"]
    export = tmp_path / "late_error.json"
    export.write_text(json.dumps(tasks))
    result = cli("score", export, "--metric", METRICS / "choices_weighted.py", "--out", tmp_path / "o",
                 "--batch-pairs", "2")
    assert result.exit_code == 2
    assert f"{export}: task #5 (id 506): annotation #0 (id 91016) has no `result`" in " ".join(result.output.split())
    assert fake.requests  # earlier tasks were already being scored
    assert not (tmp_path / "o").exists()


# --- end to end through the real local provider --------------------------------------------------------

def test_metric_that_cannot_be_imported_is_a_bad_metric_file(home, tmp_path):
    metric = tmp_path / "needs_numpy.py"
    metric.write_text("import numpy_is_not_in_the_bundle\n\ndef agreement(a, b, per_label=False):\n    return 1.0\n")
    result = cli("score", SENTIMENT, "--metric", metric, "--out", tmp_path / "o")
    assert result.exit_code == 2
    text = " ".join(result.output.split())
    # the deploy itself probes the metric's import (H2), so nothing is deployed or scored
    assert text.endswith(f"Error: bad metric file: the function cannot load it: {metric} line 1: "
                         "ModuleNotFoundError: No module named 'numpy_is_not_in_the_bundle' (nothing was deployed)")
    assert not (tmp_path / "o").exists()


def expected_pairs(path, predictions=False):
    """Pairs an export should produce, counted straight from the file."""
    count = 0
    for task in json.loads(Path(path).read_text()):
        kept = [a for a in task["annotations"] if not a.get("was_cancelled")]
        count += len(kept) * (len(kept) - 1) // 2
        if predictions:
            count += len(kept) * len(task.get("predictions") or [])
    return count


EXPORT_METRICS = {
    "leoka_lse_ner_taxonomy_agreement_excerpt.json": "lse_ner_taxonomy.py",
    "sentiment_3annotators.json": "choices_weighted.py",
}


@pytest.mark.parametrize("export", sorted(p.name for p in EXPORTS.glob("*.json")))
def test_every_shipped_export_scores_through_the_local_provider(home, tmp_path, export):
    metric = METRICS / EXPORT_METRICS.get(export, "result_overlap.py")
    path = EXPORTS / export
    extra = [] if json.loads(path.read_text())[0].get("project") is not None else ["--project", "501"]
    result = cli("score", path, "--metric", metric, "--out", tmp_path / "out", "--predictions", "--per-label", *extra)
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    document = json.loads((tmp_path / "out" / "agreement.json").read_text())
    annotation_pairs = [p for t in document["tasks"] for p in t["pairs"]]
    prediction_pairs = [p for t in document["tasks"] for p in t["predictions"]]
    assert len(annotation_pairs) == expected_pairs(path)
    assert len(annotation_pairs) + len(prediction_pairs) == expected_pairs(path, predictions=True)
    assert all(p["error"] is None and 0.0 <= p["score"] <= 1.0 for p in annotation_pairs + prediction_pairs)
    assert document["metric"]["provider"] == "local"
    assert (tmp_path / "out" / "agreement.csv").read_text().count("\n") == len(document["tasks"]) + 1
    assert (tmp_path / "out" / "agreement.png").read_bytes()[:4] == b"\x89PNG"


def test_function_lifecycle_through_the_cli(home, tmp_path):
    metric = METRICS / "choices_weighted.py"
    assert cli("status", "--project", "31").stdout.strip() == "NotDeployed"
    deployed = cli("deploy", "--project", "31", "--metric", metric)
    assert deployed.exit_code == 0 and deployed.output.startswith("created custom-metric-31-")
    assert cli("deploy", "--project", "31", "--metric", metric).output.startswith("unchanged custom-metric-31-")
    export = json.loads(SENTIMENT.read_text())
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(export[2]["annotations"][0]))  # Neutral
    b.write_text(json.dumps(export[2]["annotations"][1]))  # Neutral
    invoked = cli("invoke", "--project", "31", a, b)
    assert invoked.exit_code == 0, invoked.output
    assert json.loads(invoked.output) == {"score": 0.9}
    faulty = cli("deploy", "--project", "31", "--metric", METRICS / "choices_weighted_falls_off_end.py")
    assert faulty.output.startswith("updated custom-metric-31-")
    failed = cli("invoke", "--project", "31", a, b)
    assert failed.exit_code == 1
    assert json.loads(failed.output)["error"]["type"] == "InvalidResult"
    listed = " ".join(cli("list").output.split())
    assert "custom-metric-31-" in listed
    assert cli("logs", "--project", "31").exit_code == 0
    assert "deleted the function of project 31" in cli("delete", "--project", "31").output
    assert cli("status", "--project", "31").stdout.strip() == "NotDeployed"


SLOW_METRIC = """
import time

def agreement(annotation_1, annotation_2, per_label=False):
    time.sleep(0.4)
    return 1.0
"""


def run_and_kill(tmp_path, out_dir, home_dir):
    metric = tmp_path / "slow.py"
    metric.write_text(SLOW_METRIC)
    env = {**os.environ, "LSE_METRICS_HOME": str(home_dir)}
    env.pop("CUSTOM_METRIC_PROVIDER", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "lse_custom_metrics.runtime.cli", "score", str(SENTIMENT), "--metric", str(metric),
         "--out", str(out_dir), "--batch-pairs", "1"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        # wait until pairs are being scored: the function's log records the first invocation
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            logs = list(Path(home_dir).glob("functions/*/function.log"))
            if logs and '"pairs"' in logs[0].read_text(errors="replace"):
                break
            assert process.poll() is None, process.stdout.read().decode()
            time.sleep(0.1)
        else:
            pytest.fail("scoring never started")
        assert process.poll() is None
        children = psutil.Process(process.pid).children(recursive=True)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
    for child in children:  # function servers live in their own process groups
        try:
            child.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(children, timeout=10)
    return process.returncode


def test_run_killed_midway_leaves_no_partial_agreement_json(tmp_path):
    out_dir = tmp_path / "out"
    assert run_and_kill(tmp_path, out_dir, tmp_path / "home") == -signal.SIGKILL
    leftovers = sorted(p.name for p in out_dir.iterdir()) if out_dir.exists() else []
    assert leftovers == []


def test_run_killed_midway_keeps_the_previous_complete_outputs(tmp_path):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    previous = b'{"schema": "lse-custom-metrics/agreement/1", "summary": {"agreement": 0.5}}\n'
    (out_dir / "agreement.json").write_bytes(previous)
    run_and_kill(tmp_path, out_dir, tmp_path / "home")
    assert (out_dir / "agreement.json").read_bytes() == previous
    assert sorted(p.name for p in out_dir.iterdir()) == ["agreement.json"]


def test_truncated_export_exits_2_with_position_and_no_outputs(fake, tmp_path):
    export = tmp_path / "t.json"
    export.write_bytes(SENTIMENT.read_bytes()[:20000])
    result = cli("score", export, "--metric", METRICS / "choices_weighted.py", "--out", tmp_path / "o")
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert " ".join(result.output.split()).endswith(
        f"Error: {export}: not valid JSON (Unterminated string starting at line 748, column 9); the file ends "
        "early, it looks truncated; last task read successfully: task #3 (id 504) (the file is incomplete: "
        "download or copy the export again)")
    assert not (tmp_path / "o").exists()


# --- the output folder is checked before anything is deployed or scored ------------------------------

def _unusable_out_cases(tmp_path):
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    return [
        (a_file / "sub", f"cannot use --out {a_file / 'sub'}: {a_file} (on the way to {a_file / 'sub'}) exists "
                         "and is not a folder"),
        (a_file, f"Invalid value for '--out': Directory '{a_file}' is a file."),  # click's own check
        ("/proc/nope", "cannot use --out /proc/nope: cannot create /proc/nope in /proc: No such file or directory"),
        ("/proc", "cannot use --out /proc: cannot write in /proc: No such file or directory"),
    ]


def test_unusable_out_folder_exits_2_before_deploying(fake, tmp_path):
    for out_dir, message in _unusable_out_cases(tmp_path):
        result = cli("score", SENTIMENT, "--metric", METRICS / "choices_weighted.py", "--out", out_dir)
        assert result.exit_code == 2, (out_dir, result.output)
        assert "Traceback" not in result.output
        assert " ".join(result.output.split()).endswith(f"Error: {message}")
        assert fake.functions == {} and fake.requests == []


def test_default_out_folder_taken_by_a_file_exits_2_before_scoring(fake, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "agreement-4242").write_text("not a folder")
    result = cli("score", SENTIMENT, "--metric", METRICS / "choices_weighted.py")
    assert result.exit_code == 2
    assert " ".join(result.output.split()) == (
        "Error: cannot use --out agreement-4242: the output folder exists and is not a folder")
    assert fake.functions == {} and fake.requests == []


def test_writing_failing_at_the_end_keeps_the_results_elsewhere(fake, tmp_path, monkeypatch):
    import lse_custom_metrics.runtime.report as report

    real = report.write_atomic
    out_dir = tmp_path / "o"

    def disk_full(path, data):
        if Path(path).parent == out_dir:
            raise OSError(28, "No space left on device")
        return real(path, data)

    monkeypatch.setattr(report, "write_atomic", disk_full)
    result = cli("score", SENTIMENT, "--metric", METRICS / "choices_weighted.py", "--out", out_dir)
    assert result.exit_code == 4 and "Traceback" not in result.output
    text = " ".join(result.output.split())
    prefix = f"Error: could not write {out_dir / 'agreement.csv'}: No space left on device; the results were saved to "
    assert prefix in text and text.endswith(" instead")
    rescued = Path(text.split(prefix)[1].removesuffix(" instead"))
    assert rescued.name == "agreement.json" and rescued.parent.name.startswith("lse-metrics-agreement-")
    document = json.loads(rescued.read_text())
    assert document["summary"]["tasks"] == 8 and document["summary"]["pairs"] == 19
    assert not (out_dir / "agreement.json").exists()


def test_every_pair_failing_is_a_warning_not_a_success(fake, tmp_path):
    metric = tmp_path / "always_fails.py"
    metric.write_text("def agreement(annotation_1, annotation_2, per_label=False):\n"
                      "    raise ValueError('no weights for this project')\n")
    result = cli("score", SENTIMENT, "--metric", metric, "--out", tmp_path / "o")
    assert result.exit_code == 0, result.output
    warning = "every annotation pair failed (19/19): agreement only reflects tasks with a single annotation"
    assert f"warning: {warning}" in result.output.splitlines()
    document = json.loads((tmp_path / "o" / "agreement.json").read_text())
    summary = document["summary"]
    assert summary["warnings"] == [warning]
    # LSE's rule stays: the one task with a single annotation counts 1.0, the others have no agreement
    assert (summary["scored_tasks"], summary["errors"], summary["agreement"]) == (1, 19, 1.0)


def test_a_normal_run_has_an_empty_warning_list(fake, tmp_path):
    result = cli("score", SENTIMENT, "--metric", METRICS / "choices_weighted.py", "--out", tmp_path / "o")
    assert result.exit_code == 0 and "warning:" not in result.output
    assert json.loads((tmp_path / "o" / "agreement.json").read_text())["summary"]["warnings"] == []


def test_local_deploy_reports_the_state_it_leaves_and_status_agrees(home):
    deployed = cli("deploy", "--project", "7", "--metric", METRICS / "choices_weighted.py")
    assert deployed.exit_code == 0, deployed.output
    name = deployed.output.split()[1]
    record = json.loads((home / "functions" / name / "function.json").read_text())
    assert deployed.output == (f"created {name} on local (Inactive: starts on the next request), "
                               f"code sha256 {record['code_sha256']}\n")
    assert name.startswith("custom-metric-7-")
    assert cli("status", "--project", "7").stdout == "Inactive\n"


def test_commands_on_a_project_without_function_exit_2_with_how_to_deploy(home, tmp_path):
    annotation = tmp_path / "a.json"
    annotation.write_text(json.dumps(json.loads(SENTIMENT.read_text())[0]["annotations"][0]))
    expected = ("Error: no function deployed for project 5 (deploy it with: lse-metrics deploy --project 5 "
                "--metric FILE)")
    for command in (["invoke", "--project", "5", annotation, annotation], ["logs", "--project", "5"],
                    ["status", "--project", "5", "--strict"]):
        result = cli(*command)
        assert result.exit_code == 2, (command, result.output)
        assert " ".join(result.output.split()) == expected
    plain = cli("status", "--project", "5")
    assert plain.exit_code == 0 and plain.stdout == "NotDeployed\n"


def test_status_strict_exits_1_for_a_function_that_cannot_answer(fake, monkeypatch):
    monkeypatch.setattr(fake, "status", lambda project_id: providers.FunctionStatus.FAILED)
    result = cli("status", "--project", "8", "--strict")
    assert (result.exit_code, result.output) == (1, "Failed\n")
    assert cli("status", "--project", "8").exit_code == 0


# --- --timeout-s / --memory-mb: the local provider's limits -------------------------------------------

def test_limit_options_reach_the_provider(monkeypatch, tmp_path):
    seen = []
    provider = FakeProvider()

    def open_provider(name=None, **options):
        seen.append(options.get("limits"))
        return provider

    monkeypatch.setattr(providers, "get_provider", open_provider)
    annotation = tmp_path / "a.json"
    annotation.write_text(json.dumps(json.loads(SENTIMENT.read_text())[0]["annotations"][0]))
    limits = ["--timeout-s", "5", "--memory-mb", "128"]
    assert cli("deploy", "--project", "4242", "--metric", METRICS / "choices_weighted.py", *limits).exit_code == 0
    assert cli("invoke", "--project", "4242", annotation, annotation, *limits).exit_code == 0
    assert cli("score", SENTIMENT, "--metric", METRICS / "choices_weighted.py", "--out", tmp_path / "o",
               *limits).exit_code == 0
    assert cli("status", "--project", "4242").exit_code == 0
    custom = providers.RuntimeLimits(memory_mb=128, timeout_s=5.0)
    assert seen == [custom, custom, custom, None]
    cli("deploy", "--project", "4242", "--metric", METRICS / "choices_weighted.py")
    assert seen[-1] == providers.RuntimeLimits() == providers.RuntimeLimits(memory_mb=256, timeout_s=60.0)


def test_limit_options_say_they_are_for_local_experiments():
    for command in ("score", "deploy", "invoke"):
        text = " ".join(cli(command, "--help").output.split())
        assert "--timeout-s FLOAT RANGE local provider only: seconds a request may take. LSE's value is fixed in " \
               "the cloud; change it only for local experiments. [default: 60.0; x>=0.1]" in text
        assert "--memory-mb INTEGER RANGE local provider only: memory limit of the function process, in MB. " \
               "LSE's value is fixed in the cloud; change it only for local experiments. [default: 256; x>=32]" in text


def _deploy_metric(tmp_path, body):
    metric = tmp_path / "metric.py"
    metric.write_text(body)
    assert cli("deploy", "--project", "77", "--metric", metric).exit_code == 0
    annotation = tmp_path / "a.json"
    annotation.write_text('{"result": []}')
    return annotation


def test_local_timeout_option_cuts_a_slow_request(home, tmp_path):
    annotation = _deploy_metric(tmp_path, "import time\n\n\ndef agreement(a, b, per_label=False):\n"
                                          "    time.sleep(3)\n    return 1.0\n")
    started = time.monotonic()
    result = cli("invoke", "--project", "77", annotation, annotation, "--timeout-s", "1")
    assert result.exit_code == 3 and time.monotonic() - started < 3
    text = " ".join(result.output.split())
    assert text.startswith("Error: Timeout: function custom-metric-77-")
    assert text.endswith("(project 77): request exceeded the 1 s timeout; the function was restarted")


def test_local_memory_option_sets_the_limit(home, tmp_path):
    annotation = _deploy_metric(tmp_path, "import time\n\n\ndef agreement(a, b, per_label=False):\n"
                                          "    block = bytearray(150 * 1024 * 1024)\n    time.sleep(0.5)\n"
                                          "    return 1.0 if block else 0.0\n")
    limited = cli("invoke", "--project", "77", annotation, annotation, "--memory-mb", "100")
    assert limited.exit_code == 3
    text = " ".join(limited.output.split())
    assert text.startswith("Error: MemoryLimitExceeded: function custom-metric-77-") and "MB > 100 MB" in text
    default = cli("invoke", "--project", "77", annotation, annotation)
    assert default.exit_code == 0 and json.loads(default.output) == {"score": 1.0}


def test_unwritable_current_folder_is_found_before_deploying(fake, monkeypatch):
    monkeypatch.chdir("/proc")  # a folder where no file can be created, even by root
    result = cli("score", SENTIMENT, "--metric", METRICS / "choices_weighted.py")
    assert result.exit_code == 2
    assert " ".join(result.output.split()) == (
        "Error: cannot write the default output folder ./agreement-<project> here: cannot write in /proc: "
        "No such file or directory; pass --out DIR")
    assert fake.functions == {} and fake.requests == []


def test_interrupting_a_management_command_is_one_line_and_exit_130(fake, monkeypatch):
    def interrupted(project_id):
        raise KeyboardInterrupt

    monkeypatch.setattr(fake, "status", interrupted)
    result = cli("status", "--project", "8")
    assert (result.exit_code, result.output) == (130, "interrupted by SIGINT\n")


def test_sigterm_in_a_management_command_runs_its_clean_up_and_exits_143(fake, monkeypatch):
    closed = []
    monkeypatch.setattr(fake, "close", lambda: closed.append(True))
    monkeypatch.setattr(fake, "status", lambda project_id: os.kill(os.getpid(), signal.SIGTERM))
    result = cli("status", "--project", "8")
    assert (result.exit_code, result.output, closed) == (143, "interrupted by SIGTERM\n", [True])
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handler is removed again


# --- project ids that cannot name a function: one line, exit 2, before anything is deployed ------------

CHARACTERS = "use letters, digits, '-' or '_' (starting with a letter or digit)"
SIXTY_DIGITS = "1" * 60
TOO_LONG = ("it has 60 characters, at most 38 fit: the function name custom-metric-<project>-<unix ts> would be "
            "longer than 63 characters (Cloud Functions' limit)")
BAD_PROJECT_IDS = [("a b", CHARACTERS), ("../x", CHARACTERS), ("", f"it is empty; {CHARACTERS}"),
                   (SIXTY_DIGITS, TOO_LONG)]


@pytest.mark.parametrize("value, rule", BAD_PROJECT_IDS)
@pytest.mark.parametrize("command", ["score", "deploy", "status", "invoke", "logs", "delete"])
def test_unusable_project_option_is_one_line_exit_2(home, tmp_path, command, value, rule):
    annotation = tmp_path / "a.json"
    annotation.write_text(json.dumps(json.loads(SENTIMENT.read_text())[0]["annotations"][0]))
    arguments = {
        "score": [SENTIMENT, "--metric", METRICS / "choices_weighted.py", "--out", tmp_path / "o"],
        "deploy": ["--metric", METRICS / "choices_weighted.py"],
        "invoke": [annotation, annotation],
    }.get(command, [])
    result = cli(command, *arguments, "--project", value)
    assert (result.exit_code, result.output) == (
        2, f"Error: --project {value!r} is not a usable project id: {rule}\n")
    assert not (home / "functions").exists() or list((home / "functions").iterdir()) == []
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("value, rule", [(json.loads(json.dumps(v)), r) for v, r in BAD_PROJECT_IDS]
                         + [(int(SIXTY_DIGITS), TOO_LONG)])
def test_unusable_project_field_of_the_export_is_one_line_exit_2(home, tmp_path, value, rule):
    tasks = json.loads(SENTIMENT.read_text())
    for task in tasks:
        task["project"] = value
    export = tmp_path / "export.json"
    export.write_text(json.dumps(tasks))
    result = cli("score", export, "--metric", METRICS / "choices_weighted.py", "--out", tmp_path / "o")
    assert (result.exit_code, " ".join(result.output.split())) == (
        2, f"Error: {export}: the export's `project` field {value!r} is not a usable project id: {rule}; "
           "pass --project ID")
    assert not (home / "functions").exists() or list((home / "functions").iterdir()) == []
    # --project overrides the field
    assert cli("score", export, "--metric", METRICS / "choices_weighted.py", "--out", tmp_path / "o",
               "--project", "4242").exit_code == 0


def test_invoke_with_a_missing_annotation_file_names_it_once(fake, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.json").write_text('{"result": []}')
    result = cli("invoke", "--project", "8", "a.json", "x.json")
    assert (result.exit_code, result.output) == (2, "Error: x.json: file not found\n")


def test_status_and_list_agree_on_a_broken_function(home):
    deployed = cli("deploy", "--project", "7", "--metric", METRICS / "choices_weighted.py")
    name = deployed.output.split()[1]
    folder = home / "functions" / name
    (folder / "bundle" / "main.py").unlink()
    (folder / "function.json").write_text("garbage{")
    assert cli("status", "--project", "7").stdout == "Error\n"
    rows = [line.split("│")[1:-1] for line in cli("list").stdout.splitlines() if name[:12] in line]
    assert [[cell.strip() for cell in row] for row in rows] == [["7", name, "Error", "", ""]]
    from lse_custom_metrics.runtime.providers.local import LocalProvider

    [info] = LocalProvider().list()
    assert (info.project_id, info.status.value, info.extra["project_from"]) == ("7", "Error", "name")
    assert info.extra["error"] == f"{folder / 'function.json'} is unreadable"
    # the bundle alone missing (record readable): NotFound in both
    (folder / "function.json").write_text(json.dumps({"project_id": "7", "code_sha256": "ab" * 32}))
    assert cli("status", "--project", "7").stdout == "NotFound\n"
    assert [(i.project_id, i.status.value) for i in LocalProvider().list()] == [("7", "NotFound")]
    result = cli("invoke", "--project", "7", ANNOTATIONS / "task504_ana_positive.json",
                 ANNOTATIONS / "task504_chen_neutral.json")
    assert result.exit_code == 3
    assert result.output == (f"Error: invoke failed on local: function {name} (project 7) is NotFound: its code in "
                             f"{folder / 'bundle'} is missing or incomplete; deploy the metric again (lse-metrics "
                             "deploy --project 7 --metric FILE)\n")


def test_deploy_of_unchanged_code_is_a_true_no_op(home, monkeypatch):
    import lse_custom_metrics.runtime.supervisor as supervisor

    metric = METRICS / "choices_weighted.py"
    first = cli("deploy", "--project", "7", "--metric", metric)
    name = first.output.split()[1]
    folder = home / "functions" / name
    before = {path.relative_to(folder): path.read_bytes() for path in folder.rglob("*") if path.is_file()}
    assert (folder / "function.log").read_text() == ""  # the probe loaded it; no server was started

    def forbidden(*args, **kwargs):
        raise AssertionError("an unchanged deploy started a process")

    monkeypatch.setattr(supervisor.FunctionServer, "start", forbidden)
    monkeypatch.setattr(supervisor, "probe_metric_load", forbidden)
    monkeypatch.setattr("lse_custom_metrics.runtime.providers.local.probe_metric_load", forbidden)
    again = cli("deploy", "--project", "7", "--metric", metric)
    record = json.loads((folder / "function.json").read_text())
    assert again.output == (f"unchanged {name} on local (Inactive: starts on the next request), "
                            f"code sha256 {record['code_sha256']}\n")
    assert {path.relative_to(folder): path.read_bytes() for path in folder.rglob("*") if path.is_file()} == before


# --- a refused export deploys nothing, although scoring had started while it was read -----------------

MARKING_METRIC = """
def agreement(annotation_1, annotation_2, per_label=False):
    with open({marker!r}, "a") as marker:
        marker.write("{version}\\n")
    return {score}
"""


def _late_error_export(tmp_path) -> Path:
    tasks = json.loads(SENTIMENT.read_text())
    del tasks[5]["annotations"][0]["result"]
    export = tmp_path / "late_error.json"
    export.write_text(json.dumps(tasks))
    return export


def _marking_metric(tmp_path, version: str, score: float) -> tuple[Path, Path]:
    marker = tmp_path / f"called-{version}.txt"
    metric = tmp_path / f"metric_{version}.py"
    metric.write_text(MARKING_METRIC.format(marker=str(marker), version=version, score=score))
    return metric, marker


LATE_ERROR = "task #5 (id 506): annotation #0 (id 91016) has no `result`"


def test_refused_export_creates_no_function_although_the_staged_one_answered(home, tmp_path):
    export = _late_error_export(tmp_path)
    metric, marker = _marking_metric(tmp_path, "v1", 0.5)
    result = cli("score", export, "--metric", metric, "--out", tmp_path / "o", "--batch-pairs", "1")
    assert result.exit_code == 2
    assert " ".join(result.output.split()).endswith(f"Error: {export}: {LATE_ERROR} ({EXPORT_HINT})")
    assert marker.read_text().count("v1") >= 1  # requests reached the staged function while it read
    assert cli("status", "--project", "4242").stdout == "NotDeployed\n"
    assert list((home / "functions").iterdir()) == []  # no function, no staging folder
    assert not (tmp_path / "o").exists()


def test_refused_export_leaves_the_deployed_function_as_it_was(home, tmp_path):
    v1, _ = _marking_metric(tmp_path, "v1", 0.5)
    deployed = cli("deploy", "--project", "4242", "--metric", v1)
    name = deployed.output.split()[1]
    folder = home / "functions" / name
    before = {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*")
              if p.is_file() and p.parts[len(folder.parts)] not in ("run", "function.log")}
    v2, marker = _marking_metric(tmp_path, "v2", 0.25)
    result = cli("score", _late_error_export(tmp_path), "--metric", v2, "--out", tmp_path / "o",
                 "--batch-pairs", "1")
    assert result.exit_code == 2 and LATE_ERROR in " ".join(result.output.split())
    assert marker.read_text().count("v2") >= 1  # the staged v2 answered meanwhile ...
    after = {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*")
             if p.is_file() and p.parts[len(folder.parts)] not in ("run", "function.log")}
    assert after == before  # ... but the function still has v1: same bundle, same record
    assert sorted(p.name for p in folder.iterdir()) == ["bundle", "function.json", "function.log", "home", "run"]
    # the same run with a good export swaps v2 in
    good = cli("score", SENTIMENT, "--metric", v2, "--out", tmp_path / "o")
    assert good.exit_code == 0 and f"updated {name} on local" in good.output
    assert (folder / "bundle" / "metric.py").read_bytes() == v2.read_bytes()
    assert json.loads((tmp_path / "o" / "agreement.json").read_text())["summary"]["agreement"] == pytest.approx(
        (7 * 0.25 + 1.0) / 8)  # 7 tasks with pairs at 0.25, the single-annotation task 1.0


def test_refused_export_with_a_fake_provider_commits_nothing(fake, tmp_path):
    result = cli("score", _late_error_export(tmp_path), "--metric", METRICS / "choices_weighted.py",
                 "--out", tmp_path / "o", "--batch-pairs", "2")
    assert result.exit_code == 2 and LATE_ERROR in " ".join(result.output.split())
    assert fake.requests and fake.functions == {} and fake.staged == {}


# --- the local runtime is the caller's Python: imports LSE's 3.13 function will not have -------------------

THIRD_PARTY_METRIC = """import json
import numpy
try:
    import orjson  # optional: guarded, so never a warning
except ImportError:
    orjson = None


def agreement(annotation_1, annotation_2, per_label=False):
    import imghdr  # in 3.11's standard library, gone from 3.13
    from yaml import safe_load
    return 1.0
"""


def _python():
    return f"Python {sys.version.split()[0]}"


def test_deploy_and_score_warn_about_imports_lse_will_not_have(home, tmp_path):
    metric = tmp_path / "metric_np.py"
    metric.write_text(THIRD_PARTY_METRIC)
    expected = [
        f"warning: {metric} imports numpy, which is neither in the standard library nor in a requirements.txt "
        f"beside the metric: the local function runs on this machine's {_python()} and may find it there, "
        "LSE's Python 3.13 function will not",
        f"warning: {metric} imports imghdr, which Python 3.13 (LSE's runtime) no longer has: the local function "
        f"runs on this machine's {_python()}, where it still exists",
        f"warning: {metric} imports yaml, which is neither in the standard library nor in a requirements.txt "
        f"beside the metric: the local function runs on this machine's {_python()} and may find it there, "
        "LSE's Python 3.13 function will not",
    ]
    deployed = cli("deploy", "--project", "7", "--metric", metric)
    assert deployed.exit_code == 0  # a warning, not an error: numpy is installed here, so it works locally
    assert deployed.stderr.splitlines() == expected
    assert deployed.stdout.startswith("created custom-metric-7-")
    scored = cli("score", SENTIMENT, "--metric", metric, "--project", "7", "--out", tmp_path / "o")
    assert scored.exit_code == 0 and scored.stderr.splitlines()[:3] == expected
    # listed in a requirements.txt beside the metric (shipped in the bundle): no warning for those
    (tmp_path / "requirements.txt").write_text("numpy==2.*  # arrays\n-r other.txt\nPyYAML>=6\n")
    again = cli("deploy", "--project", "7", "--metric", metric)
    assert again.stderr.splitlines() == [expected[1]]
    assert again.stdout.startswith("updated custom-metric-7-")  # the bundle now carries requirements.txt


def test_status_names_the_python_local_functions_run_on(home):
    result = cli("status", "--project", "7")
    assert (result.exit_code, result.stdout) == (0, "NotDeployed\n")
    version = ".".join(map(str, sys.version_info[:3]))
    assert result.stderr == (f"runtime: local functions run on this machine's Python {version} ({sys.executable}) "
                             "with every package installed there; LSE runs them on Python 3.13 (its docs offer "
                             "no way to add packages)\n")


def test_example_metrics_import_nothing_lse_lacks():
    from lse_custom_metrics.runtime.bundle import import_warnings

    assert {p.name: import_warnings(p) for p in METRICS.glob("*.py")} == {p.name: [] for p in METRICS.glob("*.py")}


def _console_script() -> list[str]:
    """The installed `lse-metrics` (the console script's `run`), next to this interpreter."""
    script = Path(sys.executable).with_name("lse-metrics")
    assert script.exists(), "the package is installed (README set-up) with its console script"
    return [str(script)]


def test_console_script_exit_codes_and_output_survive_its_fast_exit(tmp_path):
    # `run` ends the process with os._exit (skipping the freeing of the export's objects): the exit
    # status, everything printed, the outputs and the servers' shutdown must be exactly as a normal exit.
    env = {**os.environ, "LSE_METRICS_HOME": str(tmp_path / "home")}
    env.pop("CUSTOM_METRIC_PROVIDER", None)
    version = subprocess.run([*_console_script(), "--version"], env=env, capture_output=True, text=True)
    assert (version.returncode, version.stdout.startswith("lse-metrics, version 0.1.0")) == (0, True)
    usage = subprocess.run([*_console_script(), "score"], env=env, capture_output=True, text=True)
    assert usage.returncode == 2 and "Missing argument 'EXPORT'" in usage.stderr
    bad = subprocess.run([*_console_script(), "score", str(tmp_path / "nope.json"), "--metric",
                          str(ROOT / "examples" / "metrics" / "choices_weighted.py"), "--provider", "local"],
                         env=env, capture_output=True, text=True)
    assert bad.returncode == 2 and "nope.json" in bad.stderr
    out = tmp_path / "out"
    scored = subprocess.Popen(
        [*_console_script(), "score", str(SENTIMENT), "--metric", str(ROOT / "examples" / "metrics" / "choices_weighted.py"),
         "--out", str(out), "--provider", "local"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, start_new_session=True)
    stdout, stderr = scored.communicate(timeout=120)
    assert scored.returncode == 0, stderr
    assert "Agreement — project" in stdout and stdout.rstrip().endswith("agreement.png")
    assert json.loads((out / "agreement.json").read_text())["summary"]["pairs"] > 0
    # the function server (its own session, cwd in this test's state folder) was stopped before the exit
    time.sleep(0.2)
    left = []
    for process in psutil.process_iter(["cwd"]):
        try:
            if (process.info["cwd"] or "").startswith(str(tmp_path)) and process.status() != psutil.STATUS_ZOMBIE:
                left.append(process.pid)
        except psutil.Error:
            pass
    assert left == []


def test_piped_output_keeps_every_record_and_table_row_on_one_line(tmp_path):
    # rich wraps at 80 columns when stdout is not a terminal: `logs > file` split records, `list` names
    env = {**os.environ, "LSE_METRICS_HOME": str(tmp_path / "home")}
    for key in ("CUSTOM_METRIC_PROVIDER", "COLUMNS"):
        env.pop(key, None)

    def piped(*args):
        done = subprocess.run([*_console_script(), *map(str, args)], env=env, capture_output=True, text=True)
        assert done.returncode in (0, 1), done.stderr
        return done

    deployed = piped("deploy", "--project", "a-rather-long-project-name-4242", "--metric", METRICS / "choices_weighted.py")
    name = deployed.stderr.split()[1] if deployed.stderr.startswith("created") else deployed.stdout.split()[1]
    piped("invoke", "--project", "a-rather-long-project-name-4242", ANNOTATIONS / "task504_ana_positive.json",
          ANNOTATIONS / "task504_chen_neutral.json")
    logs = piped("logs", "--project", "a-rather-long-project-name-4242").stdout.splitlines()
    invocation = [line for line in logs if "agreement: 0 task(s), 1 pair(s), 0 error(s)," in line]
    assert len(invocation) == 1 and invocation[0].endswith(" ms")
    rows = [line for line in piped("list").stdout.splitlines() if "a-rather-long-project-name-4242" in line]
    assert len(rows) == 1 and name in rows[0] and "Inactive" in rows[0]
