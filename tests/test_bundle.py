"""runtime/bundle.py: metric validation, bundle contents, deterministic zip, code hash."""
from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import pytest

from lse_custom_metrics.runtime.bundle import MetricValidationError, build_bundle, handler_source, validate_metric
from lse_custom_metrics.runtime.providers import ProviderError

METRICS = Path(__file__).resolve().parent / "fixtures" / "metrics"
HANDLER = Path(__file__).resolve().parent.parent / "handler" / "main.py"


def write(tmp_path: Path, source: str, name: str = "metric_under_test.py") -> Path:
    path = tmp_path / name
    path.write_text(source)
    return path


def expected_sha(files: list[tuple[str, bytes]]) -> str:
    """The documented hash, computed independently: length-prefixed name and content, sorted by name."""
    digest = hashlib.sha256()
    for name, data in sorted(files):
        digest.update(len(name.encode()).to_bytes(4, "big") + name.encode())
        digest.update(len(data).to_bytes(8, "big") + data)
    return digest.hexdigest()


def test_bundle_holds_handler_and_metric(tmp_path):
    metric = METRICS / "choices.py"
    bundle = build_bundle(metric)
    assert bundle.names == ["main.py", "metric.py"]
    assert bundle.content("main.py") == HANDLER.read_bytes() == handler_source()
    assert bundle.content("metric.py") == metric.read_bytes()
    assert bundle.code_sha256 == expected_sha([("main.py", HANDLER.read_bytes()), ("metric.py", metric.read_bytes())])


def test_zip_is_deterministic_and_complete(tmp_path):
    first = build_bundle(METRICS / "choices.py").zip_bytes()
    second = build_bundle(METRICS / "choices.py").zip_bytes()
    assert first == second
    with zipfile.ZipFile(io.BytesIO(first)) as archive:
        infos = archive.infolist()
        assert [i.filename for i in infos] == ["main.py", "metric.py"]
        assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
        assert {i.external_attr >> 16 for i in infos} == {0o100644}
        assert archive.read("metric.py") == (METRICS / "choices.py").read_bytes()
        assert archive.read("main.py") == HANDLER.read_bytes()


def test_write_dir(tmp_path):
    target = build_bundle(METRICS / "returns.py").write_dir(tmp_path / "bundle")
    assert sorted(p.name for p in target.iterdir()) == ["main.py", "metric.py"]
    assert (target / "metric.py").read_bytes() == (METRICS / "returns.py").read_bytes()


def test_requirements_beside_the_metric_or_explicit(tmp_path):
    metric = write(tmp_path, (METRICS / "choices.py").read_text(), "metric.py")
    plain = build_bundle(metric)
    (tmp_path / "requirements.txt").write_text("orjson==3.11.4\n")
    beside = build_bundle(metric)
    assert beside.names == ["main.py", "metric.py", "requirements.txt"]
    assert beside.content("requirements.txt") == b"orjson==3.11.4\n"
    assert beside.code_sha256 != plain.code_sha256
    assert build_bundle(metric, find_requirements=False).code_sha256 == plain.code_sha256
    other = tmp_path / "other.txt"
    other.write_text("numpy==2.3.0\n")
    explicit = build_bundle(metric, other)
    assert explicit.content("requirements.txt") == b"numpy==2.3.0\n"
    with pytest.raises(MetricValidationError, match=r"missing\.txt: requirements file not found"):
        build_bundle(metric, tmp_path / "missing.txt")


def test_hash_changes_with_metric_and_with_handler(tmp_path, monkeypatch):
    metric = write(tmp_path, "def agreement(a, b, per_label=False):\n    return 1.0\n")
    before = build_bundle(metric).code_sha256
    metric.write_text("def agreement(a, b, per_label=False):\n    return 0.5\n")
    changed_metric = build_bundle(metric).code_sha256
    assert changed_metric != before
    # an upgraded handler is a code change too, so a redeploy picks it up
    import lse_custom_metrics.runtime.bundle as bundle_module

    monkeypatch.setattr(bundle_module, "handler_source", lambda: HANDLER.read_bytes() + b"\n# v2\n")
    assert build_bundle(metric).code_sha256 != changed_metric


@pytest.mark.parametrize("source", [
    "def agreement(annotation_1, annotation_2, per_label=False):\n    return 1.0\n",
    "def agreement(a, b, per_label=False, *, scale=1.0):\n    return 1.0\n",
    "def agreement(a, b, **kwargs):\n    return 1.0\n",
    "def agreement(*args, **kwargs):\n    return 1.0\n",
    "def agreement(a, b, *, per_label=False):\n    return 1.0\n",
    "def agreement(a, b, per_label):\n    return 1.0\n",
    "def _impl(a, b, per_label=False):\n    return 1.0\n\nagreement = _impl\n",
    "from os.path import join as agreement\n",
])
def test_accepted_metrics(tmp_path, source):
    assert validate_metric(write(tmp_path, source)) == source


@pytest.mark.parametrize(("source", "problem"), [
    ("def agreement(a):\n    return 1.0\n",
     "line 1: `agreement` takes 1 positional argument(s); it must accept (annotation_1, annotation_2)"),
    ("\n\ndef agreement(a, b):\n    return 1.0\n",
     "line 3: `agreement` has no per_label parameter; it must accept per_label=False"),
    ("def agreement(a, b, per_label=False, weights=None, extra=None, *, mode):\n    return 1.0\n",
     "line 1: `agreement` requires a keyword-only parameter 'mode' that is never passed"),
    ("def agreement(a, b, table, per_label=False):\n    return 1.0\n",
     "line 1: `agreement` requires a parameter 'table' that is never passed"),
    ("def agreement(a, b, per_label, /):\n    return 1.0\n",
     "line 1: `agreement` declares per_label as positional-only; it is passed as a keyword argument"),
    ("async def agreement(a, b, per_label=False):\n    return 1.0\n",
     "line 1: `agreement` is `async def`; it must be a plain function"),
    ("def agreemnt(a, b, per_label=False):\n    return 1.0\n",
     ": defines no top-level function `agreement(annotation_1, annotation_2, per_label=False)`"),
    ("class Metric:\n    def agreement(self, a, b, per_label=False):\n        return 1.0\n",
     ": defines no top-level function `agreement(annotation_1, annotation_2, per_label=False)`"),
])
def test_rejected_metrics_name_file_and_line(tmp_path, source, problem):
    path = write(tmp_path, source)
    with pytest.raises(MetricValidationError) as caught:
        build_bundle(path)
    assert str(caught.value) == f"{path}{' ' if problem.startswith('line') else ''}{problem}"


def test_syntax_error_names_file_and_line(tmp_path):
    path = METRICS / "syntax_error.py"
    with pytest.raises(MetricValidationError) as caught:
        validate_metric(path)
    assert str(caught.value) == f"{path} line 3: SyntaxError: expected ':'"
    assert isinstance(caught.value, ProviderError) and isinstance(caught.value, ValueError)


def test_missing_and_non_utf8_files(tmp_path):
    with pytest.raises(MetricValidationError, match=r"nope\.py: metric file not found$"):
        validate_metric(tmp_path / "nope.py")
    with pytest.raises(MetricValidationError, match=r"metric file not found"):
        validate_metric(tmp_path)  # a directory is not a metric file
    binary = tmp_path / "latin1.py"
    binary.write_bytes(b"# caf\xe9\ndef agreement(a, b, per_label=False):\n    return 1.0\n")
    with pytest.raises(MetricValidationError, match=r"latin1\.py: not UTF-8 text"):
        validate_metric(binary)
