"""The export reader: what a Label Studio JSON export holds, and clear errors for everything else."""
import json
from pathlib import Path

import pytest

from lse_custom_metrics.runtime.export import (
    BROKEN_JSON_HINT, EXPORT_HINT, TRUNCATED_HINT, ExportError, UNKNOWN_ANNOTATOR, iter_export, parse_export, read_annotation_file, read_export,
)

EXPORTS = "examples/exports"


def write(tmp_path, name, content):
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def test_enterprise_export_object_completed_by_cancelled_and_mixed_projects():
    export = read_export(f"{EXPORTS}/leoka_lse_ner_taxonomy_agreement_excerpt.json")
    assert len(export.tasks) == 10
    assert export.projects == [58506, 58512, 58513]
    assert export.project == 58506
    first = export.tasks[0]
    assert first.id == 97056350 and first.lse_agreement == pytest.approx(80.75879027288272)
    assert [a.annotator for a in first.annotations] == ["19174", "19154", "17973"]
    assert first.annotations[0].email == "redacted@example.invalid"
    last = export.tasks[-1]
    assert [a.cancelled for a in last.annotations] == [True, True, False]
    assert [a.id for a in last.kept] == [32574039]


def test_community_export_int_completed_by():
    export = read_export(f"{EXPORTS}/sdk_yolo_rectanglelabels_2annotators.json")
    assert [(a.id, a.annotator) for a in export.tasks[0].annotations] == [(1, "2"), (2, "1")]
    assert export.tasks[0].annotations[0].email is None


def test_predictions_are_named_by_model_version():
    export = read_export(f"{EXPORTS}/evalme_test_bbox_3annotators.json")
    prediction = export.tasks[0].predictions[0]
    assert (prediction.id, prediction.annotator, prediction.is_prediction) == (32, "model:1", True)
    assert "completed_by" not in prediction.raw


def test_relation_items_without_value_are_kept_whole():
    export = read_export(f"{EXPORTS}/sdk_keypoints_parentID_relations.json")
    result = export.tasks[0].annotations[0].raw["result"]
    relations = [r for r in result if r["type"] == "relation"]
    assert len(relations) == 5
    assert all("value" not in r and "from_name" not in r for r in relations)


def test_annotation_without_completed_by_and_export_without_project():
    export = read_export(f"{EXPORTS}/sdk_doclang_rect_textarea.json")
    assert export.project is None and export.projects == []
    assert export.tasks[0].annotations[0].annotator == UNKNOWN_ANNOTATOR
    assert export.tasks[2].annotations[0].cancelled is True


def test_single_task_object_is_one_task(tmp_path):
    path = write(tmp_path, "one.json", {"id": 7, "project": 3, "annotations": [{"id": 1, "completed_by": 4, "result": []}]})
    export = read_export(path)
    assert [(t.id, t.project, len(t.annotations)) for t in export.tasks] == [(7, 3, 1)]


def test_not_json_names_file_and_what_to_export(tmp_path):
    path = write(tmp_path, "notes.json", 'annotator,score\n')
    with pytest.raises(ExportError) as info:
        read_export(path)
    message = str(info.value)
    assert str(path) in message and "CSV/TSV export, not JSON" in message
    assert 'export the project as "JSON"' in message and "not JSON_MIN, CSV or TSV" in message
    # a JSON export cut off: same file format, so the advice is a new copy, not another format
    path = write(tmp_path, "broken.json", '[{"id": 1,')
    with pytest.raises(ExportError) as info:
        read_export(path)
    message = str(info.value)
    assert str(path) in message and "not valid JSON" in message and "line 1" in message
    assert message.endswith("(the file is incomplete: download or copy the export again)")


def test_csv_export_is_recognised(tmp_path):
    path = write(tmp_path, "export.csv", "id,text,sentiment,annotator\n1,hello,Positive,a@b.c\n")
    with pytest.raises(ExportError, match=r"a CSV/TSV export, not JSON"):
        read_export(path)


def test_json_min_export_is_recognised_and_the_task_named(tmp_path):
    path = write(tmp_path, "min.json", [{"id": 41, "text": "hi", "sentiment": "Positive", "annotator": 3,
                                         "annotation_id": 9, "lead_time": 2.0}])
    with pytest.raises(ExportError) as info:
        read_export(path)
    assert "task #0 (id 41): looks like a JSON_MIN export" in str(info.value)
    assert str(path) in str(info.value)


def test_task_without_annotations(tmp_path):
    path = write(tmp_path, "x.json", [{"id": 1, "annotations": []}, {"id": 5, "data": {}}])
    with pytest.raises(ExportError) as info:
        read_export(path)
    assert f"{path}: task #1 (id 5): task has no `annotations` list" in str(info.value)


def test_annotation_without_result_names_task_and_annotation(tmp_path):
    path = write(tmp_path, "x.json", [{"id": 8, "annotations": [{"id": 80, "completed_by": 1}]}])
    with pytest.raises(ExportError) as info:
        read_export(path)
    assert f"{path}: task #0 (id 8): annotation #0 (id 80) has no `result`" in str(info.value)


@pytest.mark.parametrize("data, problem", [
    ("just text", "expected a list of tasks, found a JSON str"),
    ([1], "task #0: expected a task object, found a JSON int"),
    ([{"id": 2, "annotations": {"a": 1}}], "task #0 (id 2): `annotations` is not a list"),
    ([{"id": 2, "annotations": [{"id": 3, "result": {}}]}], "annotation #0 (id 3): `result` is not a list"),
    ([{"id": 2, "annotations": [{"id": 3, "result": [], "completed_by": {"email": "x"}}]}],
     "`completed_by` object has no `id`"),
    ([{"id": 2, "annotations": [], "predictions": [{"id": 4}]}], "prediction #0 (id 4) has no `result`"),
])
def test_malformed_exports(data, problem):
    with pytest.raises(ExportError, match=problem.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        parse_export(data, "export.json")


def test_missing_file():
    with pytest.raises(ExportError, match="nope.json: file not found"):
        read_export("nope.json")
    with pytest.raises(ExportError) as info:
        read_annotation_file("nope.json")
    assert str(info.value) == "nope.json: file not found"  # the path once, no "cannot read the JSON"


def test_annotation_file_forms(tmp_path):
    result = [{"from_name": "s", "type": "choices", "value": {"choices": ["A"]}}]
    assert read_annotation_file(write(tmp_path, "a.json", {"id": 1, "result": result}))["id"] == 1
    assert read_annotation_file(write(tmp_path, "b.json", result)) == {"result": result}
    task = {"id": 9, "annotations": [{"id": 2, "result": result}]}
    assert read_annotation_file(write(tmp_path, "c.json", task))["id"] == 2
    with pytest.raises(ExportError, match="not an annotation"):
        read_annotation_file(write(tmp_path, "d.json", {"id": 1}))


@pytest.mark.parametrize("name", ["leoka_lse_ner_taxonomy_agreement_excerpt.json", "sentiment_3annotators.json",
                                  "evalme_test_bbox_3annotators.json", "sdk_doclang_rect_textarea.json"])
def test_reader_keeps_each_objects_exported_text(name):
    path = f"{EXPORTS}/{name}"
    export = read_export(path)
    data = json.load(open(path))
    for task, source in zip(export.tasks, data):
        assert [a.raw for a in task.annotations] == source["annotations"]
        for obj in task.annotations + task.predictions:
            assert obj.raw_json is not None and json.loads(obj.raw_json) == obj.raw


@pytest.mark.parametrize("text", [
    ' [ { "id" : 1 , "project": 4, "annotations" : [ { "id": 2, "result": [], "note": "é漢 \\" ] }" } , '
    '{"id": 3, "result": [{"value": {"x": 1e3}}]} ] , "predictions": [] } ] \n',
    '{"id": 1, "annotations": [{"id": 2, "result": []}], "annotations": [{"id": 9, "result": []}]}',
    '[{"annotations": [], "id": 5}, {"id": 6, "annotations": [{"id": 7, "result": [], "x": NaN}]}]',
])
def test_scanned_reading_equals_json_loads(tmp_path, text):
    path = write(tmp_path, "odd.json", text)
    export = read_export(path)
    expected = json.loads(text)
    expected = expected if isinstance(expected, list) else [expected]
    got = [[a.raw for a in t.annotations] for t in export.tasks]
    assert json.dumps(got) == json.dumps([t["annotations"] for t in expected])
    for task in export.tasks:
        for annotation in task.annotations:
            assert json.dumps(json.loads(annotation.raw_json)) == json.dumps(annotation.raw)


@pytest.mark.parametrize("text, problem", [
    ('[{"id": 1, "annotations": []}] trailing', "not valid JSON (line 1, column 32: Extra data)"),
    ('[{"id": 1, "annotations": [}]', "not valid JSON"),
    ('[{"id": 1 "annotations": []}]', "not valid JSON (line 1, column 11: Expecting ',' delimiter)"),
])
def test_broken_json_still_gets_json_loads_message(tmp_path, text, problem):
    with pytest.raises(ExportError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        read_export(write(tmp_path, "bad.json", text))


def test_first_project_is_announced_once():
    seen = []
    export = read_export(f"{EXPORTS}/leoka_lse_ner_taxonomy_agreement_excerpt.json",
                         on_first_task=lambda task: seen.append((task.id, task.project)))
    assert seen == [(97056350, 58506)] and export.project == 58506


def test_tasks_stream_before_a_later_error(tmp_path):
    path = write(tmp_path, "late.json", [{"id": 1, "annotations": []}, {"id": 2, "annotations": [{"id": 5}]}])
    tasks = iter_export(path)
    assert next(tasks).id == 1
    with pytest.raises(ExportError, match=r"task #1 \(id 2\): annotation #0 \(id 5\) has no `result`"):
        next(tasks)


def test_truncated_export_streams_then_fails_with_json_message(tmp_path):
    path = write(tmp_path, "cut.json", '[{"id": 1, "annotations": []}, {"id": 2, "annot')
    tasks = iter_export(path)
    assert next(tasks).id == 1
    with pytest.raises(ExportError, match="not valid JSON"):
        next(tasks)


# --- broken and look-alike files: always an ExportError, never a JSONDecodeError -------------------

def test_truncated_sample_export_names_position_and_last_task_read(tmp_path):
    path = tmp_path / "t.json"
    path.write_bytes(Path(EXPORTS, "sentiment_3annotators.json").read_bytes()[:20000])
    with pytest.raises(ExportError) as info:
        read_export(path)
    assert str(info.value) == (
        f"{path}: not valid JSON (Unterminated string starting at line 748, column 9); the file ends early, "
        "it looks truncated; last task read successfully: task #3 (id 504) "
        "(the file is incomplete: download or copy the export again)")


@pytest.mark.parametrize("text, problem, hint", [
    # a bad escape inside an annotation, in the middle of a complete file
    ('[{"id": 1, "annotations": []}, {"id": 2, "annotations": [{"id": 3, "result": [], "x": "\\q"}]}]',
     "not valid JSON (line 1, column 88: Invalid \\escape); last task read successfully: task #0 (id 1)",
     BROKEN_JSON_HINT),
    # a bad escape in a task's key and in a plain task value
    ('[{"id": 1, "annotations": []}, {"i\\qd": 2}]',
     "not valid JSON (line 1, column 35: Invalid \\escape); last task read successfully: task #0 (id 1)",
     BROKEN_JSON_HINT),
    ('[{"id": 1, "data": {"t": "\\u12"}, "annotations": []}]',
     "not valid JSON (line 1, column 28: Invalid \\uXXXX escape); no task could be read", BROKEN_JSON_HINT),
    ('[{"id": 1, "annotations": []}, {"id": 2, "annotations": [-]}]',
     "not valid JSON (line 1, column 58: Expecting value); last task read successfully: task #0 (id 1)",
     BROKEN_JSON_HINT),
    ('[{"id": 1, "annotations": []}, {"id": 2, "annotations": [{"id": 3, "result": []}',
     "not valid JSON (line 1, column 81: Expecting ',' delimiter); the file ends early, it looks truncated; "
     "last task read successfully: task #0 (id 1)", TRUNCATED_HINT),
    ('[{"id": 1, "annotations": [' + "[" * 200000 + "]" * 200000 + "]}]",
     "not a Label Studio export: JSON nested too deeply to read; no task could be read", EXPORT_HINT),
    ('[{"id": 1, "annotations": []}, {"id": ' + "9" * 5000 + ', "annotations": []}]',
     "not a Label Studio export: Exceeds the limit (4300 digits) for integer string conversion: value has 5000 "
     "digits; use sys.set_int_max_str_digits() to increase the limit; last task read successfully: task #0 (id 1)",
     EXPORT_HINT),
])
def test_every_decode_failure_becomes_an_export_error(tmp_path, text, problem, hint):
    path = write(tmp_path, "bad.json", text)
    with pytest.raises(ExportError) as info:
        list(iter_export(path))
    assert str(info.value) == f"{path}: {problem} ({hint})"


@pytest.mark.parametrize("name, text", [
    ("export.csv", 'id,annotator,sentiment\n1,3,"Positive"\n'),
    ("export.tsv", "id\tannotator\tsentiment\n1\t3\tPositive\n"),
    ("export.tsv", "text\tsentiment\nhello\tPositive\n"),
])
def test_csv_and_tsv_exports_get_one_plain_message(tmp_path, name, text):
    path = write(tmp_path, name, text)
    with pytest.raises(ExportError) as info:
        read_export(path)
    assert str(info.value) == f"{path}: this is a CSV/TSV export, not JSON ({EXPORT_HINT})"


@pytest.mark.parametrize("kind", ["annotation", "prediction"])
def test_one_annotation_given_as_the_export(tmp_path, kind):
    export = json.loads(Path(EXPORTS, "sentiment_3annotators.json").read_text())
    obj = export[0]["annotations"][0] if kind == "annotation" else {"id": 7, "model_version": "v1",
                                                                     "result": [], "score": 0.5}
    path = write(tmp_path, "one.json", obj)
    with pytest.raises(ExportError) as info:
        read_export(path)
    assert str(info.value) == (
        f"{path}: item #0: this is one annotation, not an export (an object with a `result` list and no "
        '`annotations`) (export the project as "JSON" in Label Studio to score it)')


ANNOTATION_HINT = "give one annotation object with a `result` list"


@pytest.mark.parametrize("text, problem, hint", [
    ('{"result": [', "not valid JSON (line 1, column 13: Expecting value); the file ends early, it looks truncated",
     TRUNCATED_HINT),
    ('{"result": [], "id": 2 "x": 1}', "not valid JSON (line 1, column 24: Expecting ',' delimiter)",
     BROKEN_JSON_HINT),
    ("hello\n", "not JSON: the file starts with 'hello'", ANNOTATION_HINT),
    ("[" * 200000 + "]" * 200000, "JSON nested too deeply to read", ANNOTATION_HINT),
    ('{"id": ' + "9" * 5000 + ', "result": []}',
     "cannot read the JSON: Exceeds the limit (4300 digits) for integer string conversion: value has 5000 digits; "
     "use sys.set_int_max_str_digits() to increase the limit", ANNOTATION_HINT),
])
def test_annotation_file_decode_failures_are_export_errors(tmp_path, text, problem, hint):
    path = write(tmp_path, "a.json", text)
    with pytest.raises(ExportError) as info:
        read_annotation_file(path)
    assert str(info.value) == f"{path}: {problem} ({hint})"


# --- "it looks truncated" only for a file that opens a list or object and stops at its end ---------------

SENTIMENT_TEXT = Path(EXPORTS, "sentiment_3annotators.json").read_text()
_INNER_LIST_END = SENTIMENT_TEXT.index("]", SENTIMENT_TEXT.index('"result": [')) + 1
TRUNCATED = "; the file ends early, it looks truncated"


@pytest.mark.parametrize("text, problem, hint", [
    # not JSON at all: what the file looks like instead
    ("hello\n", "not JSON: the file starts with 'hello'", EXPORT_HINT),
    ("", "not JSON: the file is empty", EXPORT_HINT),
    ("  \n", "not JSON: the file is empty", EXPORT_HINT),
    ("<!DOCTYPE html><html><body>Sign in</body></html>", "not JSON: the file looks like HTML or XML", EXPORT_HINT),
    ("x" * 60, f"not JSON: the file starts with '{'x' * 40}...'", EXPORT_HINT),
    # cut off at the end: truncated, wherever the cut falls
    (SENTIMENT_TEXT[:_INNER_LIST_END],
     f"not valid JSON (line 20, column 16: Expecting ',' delimiter){TRUNCATED}; no task could be read", TRUNCATED_HINT),
    ('[{"id": 1, "annotations": []}, {"id": 2, "annotations": [], "x": tr',
     f"not valid JSON (line 1, column 66: Expecting value){TRUNCATED}; last task read successfully: task #0 (id 1)", TRUNCATED_HINT),
    ('[{"id": 1, "annotations": [], "n": 12',
     f"not valid JSON (line 1, column 38: Expecting ',' delimiter){TRUNCATED}; no task could be read", TRUNCATED_HINT),
    ('{"id": 1, "annotations": [{"id": 2, "result": [], "lead_time": ',
     f"not valid JSON (line 1, column 64: Expecting value){TRUNCATED}; no task could be read", TRUNCATED_HINT),
    ('[{"id": 1, "annotations": []},\n',
     f"not valid JSON (line 2, column 1: Expecting value){TRUNCATED}; last task read successfully: task #0 (id 1)", TRUNCATED_HINT),
    # broken in the middle: no truncation hint
    ('[{"id": 1, "annotations": []}, {"id": 2 "annotations": []}, {"id": 3, "annotations": []}]',
     "not valid JSON (line 1, column 41: Expecting ',' delimiter); last task read successfully: task #0 (id 1)", BROKEN_JSON_HINT),
    ('{"id": 1, "annotations": []}\n{"id": 2, "annotations": []}\n',
     "not valid JSON (line 2, column 1: Extra data); it looks like JSON Lines (one object per line), not one JSON "
     "document; no task could be read", EXPORT_HINT),
])
def test_truncated_only_when_the_file_stops_inside_an_open_document(tmp_path, text, problem, hint):
    path = tmp_path / "x.json"
    path.write_text(text)
    with pytest.raises(ExportError) as info:
        read_export(path)
    assert str(info.value) == f"{path}: {problem} ({hint})"
