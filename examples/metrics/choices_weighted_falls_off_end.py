"""DELIBERATELY FAULTY copy of choices_weighted.py — do not use; it shows a classic mistake.

The match branch lists the choices it knows one `if` at a time and forgets "Neutral": when both
annotators pick Neutral, the function falls off the end and returns None. LSE (and our handler) then
reports that pair as an error instead of a score; every other pair is still scored. (It also ignores
`per_label`, so with `--per-label` every pair's per-label call fails as well: a float is not a dict.)
"""

SCALE = {"Negative": 0.0, "Neutral": 0.5, "Positive": 1.0}


def first_choice(annotation):
    for region in annotation.get("result") or []:
        choices = (region.get("value") or {}).get("choices")
        if region.get("type") == "choices" and choices:
            return choices[0]
    return None


def agreement(annotation_1, annotation_2, per_label=False):
    choice_1, choice_2 = first_choice(annotation_1), first_choice(annotation_2)
    if choice_1 is None and choice_2 is None:
        return 1.0
    if choice_1 is None or choice_2 is None:
        return 0.0
    if choice_1 == choice_2:
        if choice_1 == "Positive":
            return 1.0
        if choice_1 == "Negative":
            return 1.0
        # BUG: no branch for "Neutral" (or any other choice): falls off the end, returns None.
    else:
        return 1.0 - abs(SCALE[choice_1] - SCALE[choice_2])
