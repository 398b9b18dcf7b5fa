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
