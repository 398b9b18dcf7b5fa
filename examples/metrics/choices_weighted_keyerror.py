"""DELIBERATELY FAULTY copy of choices_weighted.py — do not use; it shows a classic mistake.

Its SCALE table forgets "Neutral", and the near-miss branch indexes the table directly: any pair where
one annotator picked Neutral and the other a different choice raises KeyError: 'Neutral'. LSE (and our
handler) reports exactly those pairs as errors with the metric's own message; the rest is scored.
"""

SCALE = {"Negative": 0.0, "Positive": 1.0}  # BUG: "Neutral" is missing
MATCH_WEIGHT = {"Positive": 1.0, "Negative": 1.0, "Neutral": 0.9}


def first_choice(annotation):
    for region in annotation.get("result") or []:
        choices = (region.get("value") or {}).get("choices")
        if region.get("type") == "choices" and choices:
            return choices[0]
    return None


def agreement(annotation_1, annotation_2, per_label=False):
    choice_1, choice_2 = first_choice(annotation_1), first_choice(annotation_2)
    if choice_1 is None and choice_2 is None:
        score = 1.0
    elif choice_1 is None or choice_2 is None:
        score = 0.0
    elif choice_1 == choice_2:
        score = MATCH_WEIGHT.get(choice_1, 1.0)
    else:
        score = 1.0 - abs(SCALE[choice_1] - SCALE[choice_2])  # KeyError for "Neutral"
    if per_label:
        return {choice: score for choice in (choice_1, choice_2) if choice is not None}
    return score
