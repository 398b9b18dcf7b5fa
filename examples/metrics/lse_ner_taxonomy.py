"""Label Studio Enterprise's built-in agreement for NER spans (`labels`) plus a `taxonomy`, as a custom metric.

Reproduces the `agreement` LSE stores for projects whose labeling config has a `<Labels>` control over text
and a `<Taxonomy>` control (verified on the LEOKA export: every task within 1e-6 of `agreement` / 100).
Standard library only, Python 3.11-3.13.

Pair score, in words:
  * both results empty -> 1;
  * results are grouped by control (`from_name`); relation items have none and are skipped; every control
    found in either annotation counts, and a control that only one side used scores 0;
  * `labels`: for each span of A, the best character IoU of [start, end) with a span of B that has the same
    label list (0 when none overlaps); mean over A's spans; the same from B to A; the minimum of both;
  * `taxonomy`: a selected path that stops at a parent node stands for all its root-to-leaf paths
    (duplicates kept); score A->B = number of B's paths found among A's / number of A's paths; the
    minimum of both directions; identical selections score 1;
  * any other control type: 1 if both sides hold the same values, else 0;
  * the pair score is the plain mean over the controls (1 when no control is left).
With per_label=True the same span matching is reported per NER label (mean of both directions' per-label
means) and per taxonomy path (1 if both sides selected it, else 0).
"""

# The project's taxonomy tree (its labeling config). Paths that stop at a parent expand to its leaves.
TAXONOMY_TREE = {
    "Killed": {"Feloniously Killed": {}, "Accidentally Killed": {}},
    "Assignment": {
        "Citizen call": {}, "Conducting arrest": {}, "Investigation": {},
        "Traffic stop": {}, "Police call": {}, "Drug warrant": {},
    },
    "Situation": {"Encounter": {}, "Ambush": {}, "Pursuit": {}},
    "Suspect": {"Injured": {}, "Arrested": {}, "Suicide": {}, "Escaped": {}, "Killed": {}},
    "Assaulted": {"Injured": {}, "Not injured": {}},
}


def _controls(annotation):
    """Regions grouped by control name, in order; relation items (no `from_name`) are skipped."""
    grouped = {}
    for region in annotation.get("result") or []:
        name = region.get("from_name")
        if name is None:
            continue
        grouped.setdefault(name, []).append(region)
    return grouped


def _spans(regions):
    spans = []
    for region in regions:
        value = region.get("value") or {}
        if "start" in value and "end" in value:
            spans.append((float(value["start"]), float(value["end"]), list(value.get("labels") or [])))
    return spans


def _iou(a_start, a_end, b_start, b_end):
    overlap = min(a_end, b_end) - max(a_start, b_start)
    if overlap <= 0:
        return 0.0
    union = max(a_end, b_end) - min(a_start, b_start)
    return overlap / union if union > 0 else 0.0


def _best_matches(spans_a, spans_b):
    """For each span of A: its label list and the best IoU with a same-label span of B."""
    matches = []
    for a_start, a_end, a_labels in spans_a:
        best = 0.0
        for b_start, b_end, b_labels in spans_b:
            if b_labels == a_labels:
                iou = _iou(a_start, a_end, b_start, b_end)
                if iou > best:
                    best = iou
        matches.append((a_labels, best))
    return matches


def _direction(spans_a, spans_b):
    if not spans_a:
        return 0.0
    matches = _best_matches(spans_a, spans_b)
    return sum(best for _, best in matches) / len(matches)


def _labels_score(regions_a, regions_b):
    spans_a, spans_b = _spans(regions_a), _spans(regions_b)
    return min(_direction(spans_a, spans_b), _direction(spans_b, spans_a))


def _labels_per_label(regions_a, regions_b):
    spans_a, spans_b = _spans(regions_a), _spans(regions_b)
    directions = []
    for x, y in ((spans_a, spans_b), (spans_b, spans_a)):
        per = {}
        for labels, best in _best_matches(x, y):
            for label in labels:
                per.setdefault(label, []).append(best)
        directions.append({label: sum(v) / len(v) for label, v in per.items()})
    result = {}
    for label in set(directions[0]) | set(directions[1]):
        result[label] = (directions[0].get(label, 0.0) + directions[1].get(label, 0.0)) / 2
    return result


def _leaf_paths(path):
    """The root-to-leaf paths a selected path stands for (itself when it is a leaf or unknown)."""
    node = TAXONOMY_TREE
    for name in path:
        if not isinstance(node, dict) or name not in node:
            return [list(path)]
        node = node[name]
    if not node:
        return [list(path)]
    leaves = []
    for child in node:
        leaves.extend(_leaf_paths(list(path) + [child]))
    return leaves


def _taxonomy_paths(regions):
    paths = []
    for region in regions:
        for path in (region.get("value") or {}).get("taxonomy") or []:
            paths.extend(_leaf_paths(path))
    return paths


def _taxonomy_values(regions):
    return [(region.get("value") or {}).get("taxonomy") for region in regions]


def _taxonomy_direction(paths_a, paths_b):
    if not paths_a:
        return 0.0
    found = sum(1 for path in paths_b if path in paths_a)
    return found / len(paths_a)


def _taxonomy_score(regions_a, regions_b):
    if _taxonomy_values(regions_a) == _taxonomy_values(regions_b):
        return 1.0
    paths_a, paths_b = _taxonomy_paths(regions_a), _taxonomy_paths(regions_b)
    return min(_taxonomy_direction(paths_a, paths_b), _taxonomy_direction(paths_b, paths_a))


def _taxonomy_per_label(regions_a, regions_b):
    paths_a, paths_b = _taxonomy_paths(regions_a), _taxonomy_paths(regions_b)
    result = {}
    for path in paths_a + paths_b:
        result[" / ".join(path)] = 1.0 if (path in paths_a and path in paths_b) else 0.0
    return result


def _plain_values(regions):
    return [(region.get("type"), region.get("value")) for region in regions]


def _control_score(kind, regions_a, regions_b):
    if kind == "labels":
        return _labels_score(regions_a, regions_b)
    if kind == "taxonomy":
        return _taxonomy_score(regions_a, regions_b)
    return 1.0 if _plain_values(regions_a) == _plain_values(regions_b) else 0.0


def agreement(annotation_1, annotation_2, per_label=False):
    result_1 = annotation_1.get("result") or []
    result_2 = annotation_2.get("result") or []
    if not result_1 and not result_2:
        return {} if per_label else 1.0
    controls_1, controls_2 = _controls(annotation_1), _controls(annotation_2)
    names = list(controls_1) + [name for name in controls_2 if name not in controls_1]
    if per_label:
        return _per_label(controls_1, controls_2, names)
    if not names:
        return 1.0
    total = 0.0
    for name in names:
        regions_a, regions_b = controls_1.get(name), controls_2.get(name)
        if not regions_a or not regions_b:
            continue  # a control only one side used scores 0
        total += _control_score(regions_a[0].get("type"), regions_a, regions_b)
    return total / len(names)


def _per_label(controls_1, controls_2, names):
    result = {}
    for name in names:
        regions_a, regions_b = controls_1.get(name, []), controls_2.get(name, [])
        kind = (regions_a or regions_b)[0].get("type")
        if kind == "labels":
            result.update(_labels_per_label(regions_a, regions_b))
        elif kind == "taxonomy":
            result.update(_taxonomy_per_label(regions_a, regions_b))
    return result
