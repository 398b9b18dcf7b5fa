"""Weighted agreement for a single-choice sentiment question (Positive / Negative / Neutral).

Labeling config this metric expects (any `<Choices>` control works; the first `choices` region counts):

    <Choices name="sentiment" toName="text" choice="single">
      <Choice value="Positive"/> <Choice value="Negative"/> <Choice value="Neutral"/>
    </Choices>

Scoring, per pair of annotations:
  * both picked the same choice  -> that choice's MATCH_WEIGHT (agreeing on the fallback answer
    "Neutral" says less than agreeing on a polar one);
  * different choices on the sentiment scale -> 1 - distance on SCALE: Neutral vs a polar choice keeps
    half the credit, Positive vs Negative none;
  * a choice outside the tables: 1.0 if both picked it, else 0.0;
  * both left the question empty -> 1.0; only one answered -> 0.0.
Standard library only; runs unchanged on Python 3.11-3.13.
"""

SCALE = {"Negative": 0.0, "Neutral": 0.5, "Positive": 1.0}
MATCH_WEIGHT = {"Positive": 1.0, "Negative": 1.0, "Neutral": 0.9}


def first_choice(annotation):
    """The first selected choice of the annotation, or None when it has no `choices` region."""
    for region in annotation.get("result") or []:
        choices = (region.get("value") or {}).get("choices")
        if region.get("type") == "choices" and choices:
            return choices[0]
    return None


def pair_score(choice_1, choice_2):
    if choice_1 is None and choice_2 is None:
        return 1.0
    if choice_1 is None or choice_2 is None:
        return 0.0
    if choice_1 == choice_2:
        return MATCH_WEIGHT.get(choice_1, 1.0)
    if choice_1 in SCALE and choice_2 in SCALE:
        return 1.0 - abs(SCALE[choice_1] - SCALE[choice_2])
    return 0.0


def agreement(annotation_1, annotation_2, per_label=False):
    choice_1, choice_2 = first_choice(annotation_1), first_choice(annotation_2)
    score = pair_score(choice_1, choice_2)
    if not per_label:
        return score
    # Per label: the pair's score is credited to every choice either annotator picked.
    return {choice: score for choice in (choice_1, choice_2) if choice is not None}
