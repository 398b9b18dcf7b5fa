"""A generic agreement metric for any Label Studio control: how well two results overlap, region by region.

Regions are grouped by control (`from_name`; relation items have none and are skipped). Within a control,
every region of each side is matched to its most similar region of the other side with the same labels
(the `value[<type>]` list, e.g. `rectanglelabels`), and the control scores the mean of those best
similarities over the regions of both sides. Similarity of two same-label regions:
  * boxes (`x`, `y`, `width`, `height`, in %): intersection over union, rotation ignored;
  * polygons (`points`): IoU of their bounding boxes — a coarse but honest stand-in for polygon IoU;
  * keypoints (`x`, `y` without size): 1 - distance / 10 (% of the image), floored at 0;
  * text spans (`start`, `end`): character IoU;
  * anything else (choices, text areas, ratings, numbers, taxonomies...): 1 if the values are equal.
Pair score: the mean over the controls found in either annotation (a control only one side used
scores 0); both results empty, or nothing left but relations -> 1. per_label=True gives the mean best
similarity per label. Standard library only; runs unchanged on Python 3.11-3.13.
"""

KEYPOINT_RADIUS = 10.0  # percent of the image at which two keypoints stop agreeing


def _controls(annotation):
    grouped = {}
    for region in annotation.get("result") or []:
        if region.get("from_name") is None:
            continue  # relations link regions; they carry no value of their own
        grouped.setdefault(region["from_name"], []).append(region)
    return grouped


def _labels(region):
    value = region.get("value") or {}
    kind = region.get("type") or ""
    labels = value.get(kind) if kind.endswith("labels") or kind == "labels" else None
    return tuple(labels) if isinstance(labels, list) else ()


def _box(value):
    if "points" in value and value["points"]:
        xs = [p[0] for p in value["points"]]
        ys = [p[1] for p in value["points"]]
        return min(xs), min(ys), max(xs), max(ys)
    if all(k in value for k in ("x", "y", "width", "height")):
        return value["x"], value["y"], value["x"] + value["width"], value["y"] + value["height"]
    return None


def _iou_1d(a_start, a_end, b_start, b_end):
    overlap = min(a_end, b_end) - max(a_start, b_start)
    union = max(a_end, b_end) - min(a_start, b_start)
    return overlap / union if overlap > 0 and union > 0 else 0.0


def _box_iou(a, b):
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    if width <= 0 or height <= 0:
        return 0.0
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def similarity(region_a, region_b):
    if region_a.get("type") != region_b.get("type") or _labels(region_a) != _labels(region_b):
        return 0.0
    a, b = region_a.get("value") or {}, region_b.get("value") or {}
    box_a, box_b = _box(a), _box(b)
    if box_a and box_b:
        return _box_iou(box_a, box_b)
    if "x" in a and "y" in a and "x" in b and "y" in b:
        distance = ((a["x"] - b["x"]) ** 2 + (a["y"] - b["y"]) ** 2) ** 0.5
        return max(0.0, 1.0 - distance / KEYPOINT_RADIUS)
    if "start" in a and "end" in a and "start" in b and "end" in b:
        try:
            return _iou_1d(float(a["start"]), float(a["end"]), float(b["start"]), float(b["end"]))
        except (TypeError, ValueError):  # XPath offsets in HTML spans: fall back to equality
            return 1.0 if a == b else 0.0
    return 1.0 if a == b else 0.0


def _best_matches(regions_a, regions_b):
    """(labels, best similarity) for every region of both sides against the other side."""
    matches = []
    for mine, theirs in ((regions_a, regions_b), (regions_b, regions_a)):
        for region in mine:
            best = max((similarity(region, other) for other in theirs), default=0.0)
            matches.append((_labels(region), best))
    return matches


def agreement(annotation_1, annotation_2, per_label=False):
    controls_1, controls_2 = _controls(annotation_1), _controls(annotation_2)
    names = list(controls_1) + [n for n in controls_2 if n not in controls_1]
    if per_label:
        collected = {}
        for name in names:
            for labels, best in _best_matches(controls_1.get(name, []), controls_2.get(name, [])):
                for label in labels or (name,):
                    collected.setdefault(label, []).append(best)
        return {label: sum(v) / len(v) for label, v in collected.items()}
    if not names:
        return 1.0
    total = 0.0
    for name in names:
        matches = _best_matches(controls_1.get(name, []), controls_2.get(name, []))
        total += sum(best for _, best in matches) / len(matches)
    return total / len(names)
