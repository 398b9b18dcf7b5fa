"""The README's scoring section states what the CLI does: synopsis, local states, state folder, bench command."""
import re
from pathlib import Path

from lse_custom_metrics.runtime.cli import score
from lse_custom_metrics.runtime.providers import FunctionStatus

README = Path(__file__).resolve().parents[1] / "README.md"


def scoring_section() -> str:
    text = README.read_text()
    start = text.index("<!-- section:scoring -->")
    return text[start:text.index("<!-- section:", start + 1)]


def test_synopsis_lists_every_score_option():
    synopsis = scoring_section().split("```text\nlse-metrics score", 1)[1].split("```", 1)[0]
    options = {opt for param in score.params for opt in param.opts if opt.startswith("--")} - {"--help"}
    assert options == set(re.findall(r"--[a-z-]+", synopsis))


def test_local_states_table_has_every_status_once():
    rows = re.findall(r"^\| `(\w+)` \| ", scoring_section(), flags=re.MULTILINE)
    states = [row for row in rows if row in {s.value for s in FunctionStatus}]
    assert states == [s.value for s in FunctionStatus]


def test_state_folder_and_providers_are_documented():
    section = " ".join(scoring_section().split())
    assert "`$LSE_METRICS_HOME` (default `~/.lse-custom-metrics`)" in section
    assert "lse-metrics delete --project 7" in section and "rm -rf ~/.lse-custom-metrics" in section
    assert ("`--provider aws|gcp` reports that those runtime providers are not implemented yet (the Pulumi "
            "foundations for both clouds, below, are complete)") in section
    assert "`.venv/bin/python bench/score_throughput.py`" in section
    assert "python bench/" not in section.replace(".venv/bin/python bench/", "")


# --- the README's commands, run as written -----------------------------------------------------------------

import json  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

from click.testing import CliRunner  # noqa: E402

from lse_custom_metrics.runtime.cli import main  # noqa: E402

ROOT = README.parent


def bash_blocks(text: str) -> list[str]:
    return re.findall(r"^```bash\n(.*?)^```$", text, flags=re.MULTILINE | re.DOTALL)


def test_setup_is_two_commands_and_the_first_names_the_local_provider(tmp_path, monkeypatch):
    text = README.read_text()
    setup = text[text.index("## Set up"):text.index("<!-- section:scoring -->")]
    first, second = bash_blocks(text)[:2]
    assert bash_blocks(setup) == [first, second]  # .ci/run runs exactly these two
    assert first.count("\n") == second.count("\n") == 1
    score = first.split(" && ")[-1].strip()
    assert score.startswith(".venv/bin/lse-metrics score ") and score.endswith(" --provider local")
    # so an LSE host's own CUSTOM_METRIC_PROVIDER=aws does not break it
    monkeypatch.chdir(tmp_path)
    arguments = [a if a.startswith("-") or a == "score" else str(ROOT / a) if "/" in a else a
                 for a in score.split()[1:]]
    result = CliRunner().invoke(main, arguments, env={"CUSTOM_METRIC_PROVIDER": "aws",
                                                     "LSE_METRICS_HOME": str(tmp_path / "home")})
    assert result.exit_code == 0, result.output
    assert (tmp_path / "agreement-58506" / "agreement.json").is_file()


def test_readme_invoke_example_runs_as_written(tmp_path):
    section = scoring_section()
    [example] = [block for block in bash_blocks(section) if "lse-metrics invoke" in block]
    deploy_line, invoke_line = example.strip().splitlines()
    script = Path(sys.executable).parent / "lse-metrics"  # this venv's, wherever it is
    env = {k: v for k, v in os.environ.items() if k != "CUSTOM_METRIC_PROVIDER"}
    env["LSE_METRICS_HOME"] = str(tmp_path / "home")

    def run(line):
        command = line.split()
        assert command[0] == ".venv/bin/lse-metrics"
        return subprocess.run([str(script), *command[1:]], cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=120)

    deployed = run(deploy_line)
    assert deployed.returncode == 0, deployed.stderr
    shown = re.search(r"prints `(created custom-metric-7-)<unix ts>( on local \(Inactive: starts on the next "
                      r"request\), code sha256 )…`", " ".join(section.split()))
    assert re.fullmatch(re.escape(shown.group(1)) + r"\d+" + re.escape(shown.group(2)) + "[0-9a-f]{64}\n",
                        deployed.stdout)
    invoked = run(invoke_line)
    reply = section.split(invoke_line, 1)[1].split("```json\n", 1)[1].split("```", 1)[0]
    assert (invoked.returncode, invoked.stdout) == (0, reply)
    for name in invoke_line.split()[4:6]:  # the two files ship with the project, from the sentiment export
        annotation = json.loads((ROOT / name).read_text())
        task = next(t for t in json.loads((ROOT / "examples/exports/sentiment_3annotators.json").read_text())
                    if t["id"] == annotation["task"])
        assert annotation in task["annotations"]


# --- every output column and key is documented -----------------------------------------------------------

KEYS_METRIC = """
def agreement(annotation_1, annotation_2, per_label=False):
    if annotation_1["id"] == 91010:
        raise KeyError("weights")
    if per_label and annotation_1["id"] == 91001:
        raise ValueError("no labels for this pair")
    return {"A": 0.5} if per_label else 0.5
"""


def _documented(table_title: str) -> set[str]:
    section = scoring_section()
    table = section.split(table_title, 1)[1].split("\n\n", 2)[1]
    return set(re.findall(r"`([a-z_0-9]+)`", table))


def _keys(value, found=None) -> set[str]:
    found = set() if found is None else found
    if isinstance(value, dict):
        for key, item in value.items():
            found.add(key)
            if key != "labels":  # {label: score}: the metric's labels, not keys of the format
                _keys(item, found)
    elif isinstance(value, list):
        for item in value:
            _keys(item, found)
    return found


def test_every_agreement_json_key_and_csv_column_is_documented(tmp_path, monkeypatch):
    import fake_provider
    import lse_custom_metrics.runtime.providers as providers

    provider = fake_provider.FakeProvider()
    monkeypatch.setattr(providers, "get_provider", lambda name=None, **options: provider)
    metric = tmp_path / "keys.py"
    metric.write_text(KEYS_METRIC)
    keys, columns = set(), set()
    for export in ("sentiment_3annotators.json", "leoka_lse_ner_taxonomy_agreement_excerpt.json"):
        out = tmp_path / export
        result = CliRunner().invoke(main, ["score", str(ROOT / "examples" / "exports" / export), "--metric",
                                           str(metric), "--out", str(out), "--predictions", "--per-label"])
        assert result.exit_code == 0, result.output
        document = json.loads((out / "agreement.json").read_text())
        keys |= _keys({k: v for k, v in document.items() if k not in ("annotators",)})
        keys |= _keys(next(iter(document["annotators"].values()))) | {"annotators"}
        columns |= set((out / "agreement.csv").read_text().splitlines()[0].split(","))
    assert {"labels_error", "error_where", "lse_agreement", "model_version", "prediction_label_errors"} <= keys
    assert keys - _documented("`agreement.json` (schema") == set()
    assert columns - _documented("`agreement.csv`, one row per task") == set()
    assert "labels" in columns and "prediction_agreement" in columns and "lse_agreement" in columns
