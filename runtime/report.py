"""Write a scoring run's outputs: agreement.json, agreement.csv and agreement.png, each atomically.

Every file is written to a temporary file in the output folder and moved into place with `os.replace`,
so a run that is killed or fails leaves either the previous complete file or none — never half a file.
`agreement.json` is replaced last: its presence means the run finished.
"""
from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Callable

JSON_NAME, CSV_NAME, PNG_NAME = "agreement.json", "agreement.csv", "agreement.png"
CSV_COLUMNS = ["task_id", "annotations", "cancelled", "pairs", "errors", "agreement"]


class OutputError(Exception):
    """The output folder cannot be created or written (names the folder and the reason)."""


def check_out_dir(out_dir: str | Path) -> Path:
    """Fail early (before any scoring) when `out_dir` could not be created or written; create nothing.

    Returns the absolute folder. The nearest existing folder on its path must be a writable folder:
    that is where write_outputs will create the rest, or write the files.
    """
    path = Path(out_dir).absolute()
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        what = "the output folder" if existing == path else f"{existing} (on the way to {path})"
        raise OutputError(f"cannot use --out {out_dir}: {what} exists and is not a folder")
    try:
        handle, probe = tempfile.mkstemp(dir=existing, prefix=".lse-metrics-probe.")
    except OSError as exc:
        action = "write in" if existing == path else f"create {path} in"
        raise OutputError(f"cannot use --out {out_dir}: cannot {action} {existing}: "
                          f"{exc.strerror or exc}") from None
    os.close(handle)
    os.unlink(probe)
    return path


def write_atomic(path: str | Path, data: bytes | Callable[[io.BufferedWriter], None]) -> Path:
    """Write bytes (or let `data(file)` write) to `path` via a temp file in the same folder + os.replace."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(handle, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get ordinary file permissions
        with os.fdopen(handle, "wb") as out:
            if callable(data):
                data(out)
            else:
                out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        try:
            os.unlink(temp)
        except FileNotFoundError:
            pass
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# Above this many pairs agreement.json is written without indentation: the indenting encoder is pure
# Python and several times slower than the compact one.
INDENT_MAX_PAIRS = 5000


def json_bytes(document: dict) -> bytes:
    pairs = sum(len(t["pairs"]) + len(t["predictions"]) for t in document.get("tasks", []))
    indent = 2 if pairs <= INDENT_MAX_PAIRS else None
    return (json.dumps(document, indent=indent, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")


def preload_plotting() -> None:
    """Import matplotlib ahead of time (the CLI does it in a thread while the function is working)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot  # noqa: F401


def _fmt(value) -> str:
    return "" if value is None else repr(float(value))


def csv_bytes(document: dict) -> bytes:
    """One row per task; optional columns appear when the run had them."""
    tasks = document["tasks"]
    columns = list(CSV_COLUMNS)
    if document.get("predictions"):
        columns += ["prediction_pairs", "prediction_errors", "prediction_agreement"]
    if any("lse_agreement" in t for t in tasks):
        columns.append("lse_agreement")
    if document.get("per_label"):
        columns.append("labels")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for task in tasks:
        row = {
            "task_id": task["id"], "annotations": task["annotations"], "cancelled": task.get("cancelled", 0),
            "pairs": len(task["pairs"]), "errors": sum(1 for p in task["pairs"] if p["error"] is not None),
            "agreement": _fmt(task["agreement"]),
            "prediction_pairs": len(task["predictions"]),
            "prediction_errors": sum(1 for p in task["predictions"] if p["error"] is not None),
            "prediction_agreement": _fmt(task.get("prediction_agreement")),
            "lse_agreement": _fmt(task.get("lse_agreement")),
            "labels": json.dumps(task["labels"], ensure_ascii=False, sort_keys=True) if task.get("labels") else "",
        }
        writer.writerow([row[c] for c in columns])
    return buffer.getvalue().encode("utf-8")


def summary_warnings(document: dict) -> list[str]:
    """Warnings that keep a headline agreement from looking like success when the metric failed.

    LSE's rules stay (a task with one annotation counts 1.0), so a run whose every pair failed can
    still show a high agreement: it then only reflects the single-annotation tasks, and says so.
    """
    summary = document["summary"]
    warnings: list[str] = []
    pairs, errors = summary["pairs"], summary["errors"]
    if pairs and errors == pairs:
        single = sum(1 for t in document["tasks"] if t["annotations"] == 1)
        consequence = ("agreement only reflects tasks with a single annotation" if single
                       else "no agreement could be computed")
        warnings.append(f"every annotation pair failed ({errors}/{pairs}): {consequence}")
    prediction_pairs = summary.get("prediction_pairs") or 0
    if prediction_pairs and summary.get("prediction_errors") == prediction_pairs:
        warnings.append(f"every prediction pair failed ({prediction_pairs}/{prediction_pairs}): "
                        "no prediction agreement could be computed")
    return warnings


# What a cell of the annotator matrix shows (CELL_SELF: the diagonal, an annotator against themselves).
CELL_SCORE, CELL_FAILED, CELL_NEVER, CELL_SELF = "score", "failed", "never", "self"


def matrix_cells(document: dict) -> list[list[str]]:
    """For each matrix cell: a score, every pair of the two annotators failed, never paired, or the diagonal."""
    names = document["matrix"]["annotators"]
    values = document["matrix"]["agreement"]
    seen: set[tuple[str, str]] = set()
    for task in document["tasks"]:
        for pair in task["pairs"]:
            a, b = pair.get("annotator_a"), pair.get("annotator_b")
            if a is not None and b is not None:
                seen.update({(str(a), str(b)), (str(b), str(a))})
    return [[CELL_SELF if r == c else CELL_SCORE if values[r][c] is not None
             else CELL_FAILED if (row, col) in seen else CELL_NEVER
             for c, col in enumerate(names)] for r, row in enumerate(names)]


NEVER_COLOUR, FAILED_COLOUR = "#d9d9d9", "#d62728"


def render_figure(document: dict):
    """The annotator matrix as an annotated heatmap (a matplotlib Figure; the caller closes it).

    Cells: the mean pair agreement; grey and blank when the two never annotated the same task;
    hatched with a red border and `err` when they did but every one of their pairs failed; white on the
    diagonal (not a pair). The legend, below the plot, lists the grey and red kinds present.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.patches import Patch, Rectangle

    names = document["matrix"]["annotators"]
    values = document["matrix"]["agreement"]
    size = max(4.0, 1.0 + 0.8 * len(names))
    fig, ax = plt.subplots(figsize=(size + 1.5, size + 0.6), dpi=100)
    title = f"Annotator agreement, project {document['project']}"
    legend_room = 0.0
    if not names:
        ax.axis("off")
        ax.text(0.5, 0.5, "no annotator pairs to show", ha="center", va="center")
    else:
        grid = np.ma.masked_invalid(np.array(
            [[np.nan if v is None else v for v in row] for row in values], dtype=float))
        cmap = matplotlib.colormaps["viridis"].with_extremes(bad=NEVER_COLOUR)
        image = ax.imshow(grid, cmap=cmap, vmin=0.0, vmax=1.0)
        ax.set_xticks(range(len(names)), labels=names, rotation=45, ha="right")
        ax.set_yticks(range(len(names)), labels=names)
        ax.set_xlabel("annotator")
        ax.set_ylabel("annotator")
        cells = matrix_cells(document)
        for r, row in enumerate(cells):
            for c, kind in enumerate(row):
                if kind == CELL_SCORE:
                    value = values[r][c]
                    ax.text(c, r, f"{value:.2f}", ha="center", va="center",
                            color="black" if value > 0.6 else "white", fontsize=9)
                elif kind == CELL_SELF:  # not a pair: blank, so it cannot be read as "never paired"
                    ax.add_patch(Rectangle((c - 0.5, r - 0.5), 1, 1, facecolor="white", edgecolor="none",
                                           label="_self"))
                elif kind == CELL_FAILED:
                    ax.add_patch(Rectangle((c - 0.5, r - 0.5), 1, 1, facecolor="white", edgecolor=FAILED_COLOUR,
                                           hatch="///", linewidth=2, label="_failed"))
                    ax.text(c, r, "err", ha="center", va="center", color=FAILED_COLOUR, fontsize=9,
                            fontweight="bold", bbox={"facecolor": "white", "edgecolor": "none", "pad": 1})
        fig.colorbar(image, ax=ax, label="mean pair agreement")
        kinds = {kind for row in cells for kind in row}
        handles = []
        if CELL_NEVER in kinds:
            handles.append(Patch(facecolor=NEVER_COLOUR, edgecolor="none", label="never on the same task"))
        if CELL_FAILED in kinds:
            handles.append(Patch(facecolor="white", edgecolor=FAILED_COLOUR, hatch="///",
                                 label="err: every pair failed"))
        if handles:  # in figure coordinates, with room kept for it below: never cut off, whatever the size
            fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8, frameon=False)
            legend_room = 0.45 / fig.get_figheight()
    ax.set_title(title)
    fig.tight_layout(rect=(0, legend_room, 1, 1))
    return fig


def png_writer(document: dict) -> Callable[[io.BufferedWriter], None]:
    """A writer that saves render_figure(document) as PNG."""

    def write(out) -> None:
        import matplotlib.pyplot as plt

        fig = render_figure(document)
        try:
            fig.savefig(out, format="png")
        finally:
            plt.close(fig)

    return write


def write_outputs(document: dict, out_dir: str | Path) -> dict[str, Path]:
    """Write the three files; agreement.json goes last so its presence marks a finished run."""
    out_dir = Path(out_dir)
    json_data, csv_data = json_bytes(document), csv_bytes(document)  # fail before writing anything
    paths: dict[str, Path] = {}
    for key, name, data in (("csv", CSV_NAME, csv_data), ("png", PNG_NAME, png_writer(document)),
                            ("json", JSON_NAME, json_data)):
        try:
            paths[key] = write_atomic(out_dir / name, data)
        except OSError as exc:
            raise OutputError(f"could not write {out_dir / name}: {exc.strerror or exc}") from None
    return {"json": paths["json"], "csv": paths["csv"], "png": paths["png"]}


def rescue_json(document: dict) -> Path | None:
    """Last resort when the output folder failed at the end: agreement.json in a new temp folder."""
    try:
        folder = Path(tempfile.mkdtemp(prefix="lse-metrics-agreement-"))
        return write_atomic(folder / JSON_NAME, json_bytes(document))
    except OSError:
        return None
