"""Per-label variant of choices_weighted.py: how reliably annotators agree on each sentiment choice.

With per_label=True every choice either annotator picked gets a score for this pair:
  * a choice both picked -> its MATCH_WEIGHT;
  * a choice only one picked -> the near-miss credit of the pair (1 - distance on SCALE), so a
    Neutral/Positive disagreement counts 0.5 against both Neutral and Positive, Positive/Negative 0.0;
  * a choice outside the tables that only one picked -> 0.0.
Without per_label it returns the same overall score as choices_weighted.py.
Standard library only; runs unchanged on Python 3.11-3.13.
"""

SCALE = {"Negative": 0.0, "Neutral": 0.5, "Positive": 1.0}
MATCH_WEIGHT = {"Positive": 1.0, "Negative": 1.0, "Neutral": 0.9}


def choices_of(annotation):
    """Every selected choice of the annotation (multi-choice questions give several)."""
    picked = []
    for region in annotation.get("result") or []:
        if region.get("type") == "choices":
            picked.extend((region.get("value") or {}).get("choices") or [])
    return picked


def near_miss(choice_1, choice_2):
    if choice_1 in SCALE and choice_2 in SCALE:
        return 1.0 - abs(SCALE[choice_1] - SCALE[choice_2])
    return 0.0


def overall(choices_1, choices_2):
    if not choices_1 and not choices_2:
        return 1.0
    if not choices_1 or not choices_2:
        return 0.0
    first_1, first_2 = choices_1[0], choices_2[0]
    if first_1 == first_2:
        return MATCH_WEIGHT.get(first_1, 1.0)
    return near_miss(first_1, first_2)


def agreement(annotation_1, annotation_2, per_label=False):
    choices_1, choices_2 = choices_of(annotation_1), choices_of(annotation_2)
    if not per_label:
        return overall(choices_1, choices_2)
    scores = {}
    for choice in choices_1 + [c for c in choices_2 if c not in choices_1]:
        if choice in choices_1 and choice in choices_2:
            scores[choice] = MATCH_WEIGHT.get(choice, 1.0)
        else:
            others = choices_2 if choice in choices_1 else choices_1
            scores[choice] = max((near_miss(choice, other) for other in others), default=0.0)
    return scores
