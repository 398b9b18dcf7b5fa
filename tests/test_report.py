"""Outputs: exact CSV rows, a real PNG heatmap, and atomic replacement of every file."""
import csv
import io
import json
import os
import struct

import pytest

from lse_custom_metrics.runtime.report import (
    CELL_FAILED, CELL_NEVER, CELL_SCORE, CELL_SELF, csv_bytes, json_bytes, matrix_cells, render_figure, summary_warnings,
    write_atomic, write_outputs,
)


def document(per_label=False, predictions=False):
    return {
        "schema": "lse-custom-metrics/agreement/1", "project": "9", "per_label": per_label,
        "predictions": predictions,
        "metric": {"path": "m.py", "sha256": "0" * 64, "function": "custom-metric-9-1", "provider": "fake"},
        "summary": {"tasks": 2, "scored_tasks": 1, "pairs": 2, "errors": 1, "agreement": 0.25},
        "tasks": [
            {"id": 1, "annotations": 2, "cancelled": 1, "agreement": 0.25, "labels": {"B": 0.5, "A": 0.25} if per_label else None,
             "pairs": [{"a": 10, "b": 11, "score": 0.25, "error": None}],
             "predictions": [{"a": 10, "b": 90, "score": 1.0, "error": None}] if predictions else [],
             **({"prediction_agreement": 1.0} if predictions else {}), "lse_agreement": 0.25},
            {"id": 2, "annotations": 2, "cancelled": 0, "agreement": None, "labels": None,
             "pairs": [{"a": 20, "b": 21, "score": None, "error": "KeyError: 'x'"}], "predictions": [],
             **({"prediction_agreement": None} if predictions else {})},
        ],
        "annotators": {"3": {"pairs": 2, "errors": 1, "agreement": 0.25}, "4": {"pairs": 1, "errors": 0, "agreement": 0.25},
                       "5": {"pairs": 1, "errors": 1, "agreement": None}},
        "matrix": {"annotators": ["3", "4", "5"],
                   "agreement": [[None, 0.25, None], [0.25, None, None], [None, None, None]]},
    }


def test_csv_one_row_per_task():
    rows = list(csv.reader(io.StringIO(csv_bytes(document()).decode())))
    assert rows == [
        ["task_id", "annotations", "cancelled", "pairs", "errors", "agreement", "lse_agreement"],
        ["1", "2", "1", "1", "0", "0.25", "0.25"],
        ["2", "2", "0", "1", "1", "", ""],
    ]


def test_csv_with_predictions_and_labels():
    rows = list(csv.reader(io.StringIO(csv_bytes(document(per_label=True, predictions=True)).decode())))
    assert rows[0][-5:] == ["prediction_pairs", "prediction_errors", "prediction_agreement", "lse_agreement", "labels"]
    assert rows[1][-5:] == ["1", "0", "1.0", "0.25", '{"A": 0.25, "B": 0.5}']
    assert rows[2][-5:] == ["0", "0", "", "", ""]


def png_size(data):
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_write_outputs_writes_three_files(tmp_path):
    paths = write_outputs(document(), tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["agreement.csv", "agreement.json", "agreement.png"]
    assert json.loads(paths["json"].read_text()) == document()
    width, height = png_size(paths["png"].read_bytes())
    assert width >= 400 and height >= 300
    assert oct(paths["json"].stat().st_mode & 0o777) == oct(0o666 & ~current_umask())


def current_umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_png_with_no_annotators(tmp_path):
    empty = document()
    empty["matrix"] = {"annotators": [], "agreement": []}
    paths = write_outputs(empty, tmp_path)
    png_size(paths["png"].read_bytes())


def test_json_is_strict():
    broken = document()
    broken["summary"]["agreement"] = float("nan")
    with pytest.raises(ValueError):
        json_bytes(broken)


def test_failed_write_keeps_the_previous_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "agreement.json"
    write_atomic(target, b'{"complete": true}\n')

    def half_then_fail(out):
        out.write(b'{"compl')
        raise RuntimeError("killed while writing")

    with pytest.raises(RuntimeError):
        write_atomic(target, half_then_fail)
    assert target.read_bytes() == b'{"complete": true}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["agreement.json"]


def test_write_outputs_with_an_unwritable_document_writes_nothing(tmp_path):
    bad = document()
    bad["summary"]["agreement"] = float("inf")
    with pytest.raises(ValueError):
        write_outputs(bad, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_png_failure_leaves_the_previous_json(tmp_path, monkeypatch):
    write_outputs(document(), tmp_path)
    before = (tmp_path / "agreement.json").read_bytes()
    changed = document()
    changed["summary"]["agreement"] = 0.75
    import lse_custom_metrics.runtime.report as report

    def broken_png(doc):
        def write(out):
            out.write(b"\x89PNG half")
            raise MemoryError("renderer died")
        return write

    monkeypatch.setattr(report, "png_writer", broken_png)
    with pytest.raises(MemoryError):
        write_outputs(changed, tmp_path)
    assert (tmp_path / "agreement.json").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["agreement.csv", "agreement.json", "agreement.png"]


def test_check_out_dir_accepts_a_creatable_folder_and_creates_nothing(tmp_path):
    from lse_custom_metrics.runtime.report import check_out_dir

    target = tmp_path / "a" / "b"
    assert check_out_dir(target) == target
    assert list(tmp_path.iterdir()) == []  # the probe file is gone and no folder was made


# --- runs where the metric failed: warnings and the heatmap's "err" cells ---------------------------

def failed_document():
    """Annotators 3-4 scored once; 3-5 only ever failed; 4-5 never on the same task; task 3 has one annotation."""
    doc = document()
    doc["tasks"][0]["pairs"][0].update(annotator_a="3", annotator_b="4")
    doc["tasks"][1]["pairs"][0].update(annotator_a="3", annotator_b="5")
    doc["tasks"].append({"id": 3, "annotations": 1, "cancelled": 0, "agreement": 1.0, "labels": None,
                         "pairs": [], "predictions": []})
    return doc


def all_failed(doc, single_annotation_task=True):
    doc["tasks"][0]["pairs"][0].update(score=None, error="ValueError: boom")
    doc["tasks"][0]["agreement"] = None
    if not single_annotation_task:
        doc["tasks"].pop()
    doc["summary"].update(pairs=2, errors=2)
    return doc


def test_no_warning_when_some_pairs_scored():
    assert summary_warnings(failed_document()) == []


def test_warning_when_every_pair_failed():
    assert summary_warnings(all_failed(failed_document())) == [
        "every annotation pair failed (2/2): agreement only reflects tasks with a single annotation"]
    assert summary_warnings(all_failed(failed_document(), single_annotation_task=False)) == [
        "every annotation pair failed (2/2): no agreement could be computed"]


def test_warning_when_every_prediction_pair_failed():
    doc = failed_document()
    doc["summary"].update(prediction_pairs=3, prediction_errors=3, prediction_agreement=None)
    assert summary_warnings(doc) == ["every prediction pair failed (3/3): no prediction agreement could be computed"]
    doc["summary"]["prediction_errors"] = 2
    assert summary_warnings(doc) == []


def test_matrix_cells_tell_failed_from_never_paired():
    assert matrix_cells(failed_document()) == [
        [CELL_SELF, CELL_SCORE, CELL_FAILED],
        [CELL_SCORE, CELL_SELF, CELL_NEVER],
        [CELL_FAILED, CELL_NEVER, CELL_SELF],
    ]


def test_heatmap_marks_failed_cells_err_hatched_red_and_has_a_legend():
    import matplotlib.pyplot as plt
    from matplotlib.colors import to_hex
    from matplotlib.patches import Rectangle

    figure = render_figure(failed_document())
    try:
        ax = figure.axes[0]
        texts = sorted((t.get_text(), t.get_position()) for t in ax.texts)
        assert texts == [("0.25", (0, 1)), ("0.25", (1, 0)), ("err", (0, 2)), ("err", (2, 0))]
        boxes = sorted((r.get_xy(), r.get_hatch(), to_hex(r.get_edgecolor())) for r in ax.patches
                       if isinstance(r, Rectangle) and r.get_label() == "_failed")
        assert boxes == [((-0.5, 1.5), "///", "#d62728"), ((1.5, -0.5), "///", "#d62728")]
        diagonal = [r for r in ax.patches if r.get_label() == "_self"]
        assert [(r.get_xy(), to_hex(r.get_facecolor())) for r in diagonal] == [
            ((-0.5, -0.5), "#ffffff"), ((0.5, 0.5), "#ffffff"), ((1.5, 1.5), "#ffffff")]
        (legend,) = figure.legends
        assert [t.get_text() for t in legend.get_texts()] == ["never on the same task", "err: every pair failed"]
    finally:
        plt.close(figure)


def _legend_inside_the_figure(figure) -> bool:
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    (legend,) = figure.legends
    box, page = legend.get_window_extent(renderer), figure.bbox
    return box.x0 >= page.x0 and box.y0 >= page.y0 and box.x1 <= page.x1 and box.y1 <= page.y1


@pytest.mark.parametrize("annotators", [2, 3, 8, 20])
def test_heatmap_legend_is_inside_the_image_and_only_for_kinds_present(annotators):
    import matplotlib.pyplot as plt

    names = [str(3000 + i) for i in range(annotators)]
    # every pair scored but the first two annotators never met: one legend entry (grey)
    values = [[None if r == c or {r, c} == {0, 1} else 0.5 for c in range(annotators)] for r in range(annotators)]
    document = {"project": "7", "tasks": [], "matrix": {"annotators": names, "agreement": values}}
    figure = render_figure(document)
    try:
        assert [t.get_text() for t in figure.legends[0].get_texts()] == ["never on the same task"]
        assert _legend_inside_the_figure(figure)
    finally:
        plt.close(figure)
    # all pairs scored: nothing to explain, no legend
    values = [[None if r == c else 0.5 for c in range(annotators)] for r in range(annotators)]
    figure = render_figure({"project": "7", "tasks": [], "matrix": {"annotators": names, "agreement": values}})
    try:
        assert figure.legends == []
    finally:
        plt.close(figure)


def test_heatmap_png_of_a_failed_run_is_written(tmp_path):
    paths = write_outputs(all_failed(failed_document()), tmp_path / "out")
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
