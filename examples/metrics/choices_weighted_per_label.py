"""Per-label agreement for a sentiment question: how well each choice is backed by the other annotator.

Where choices_weighted.py scores the pair and credits that one score to every choice either annotator
picked, this metric scores each choice on its own, from that choice's point of view, and the pair's
overall score is the mean of those per-label scores. Per pair of annotations:
  * a choice both picked -> its MATCH_WEIGHT (agreeing on the fallback answer "Neutral" says less than
    agreeing on a polar one);
  * a choice only one picked -> the best CREDIT the other annotator's choices give it. The table is
    deliberately not symmetric: for a Neutral answer, a polar answer on the other side is half right
    (0.5); for a polar answer, a Neutral on the other side backs it only a little (0.25), and the
    opposite polarity not at all;
  * a choice outside the tables: 1.0 if both picked it, else 0.0.
So Positive vs Neutral gives {"Positive": 0.25, "Neutral": 0.5} and an overall 0.375 (choices_weighted.py:
0.5 for both labels and overall), Positive vs Negative {"Positive": 0.0, "Negative": 0.0} and 0.0.
Multi-choice answers (several choices per region or several regions) are scored label by label the same
way. Both left the question empty -> 1.0 (no labels); only one answered -> its choices score 0.0.
Standard library only; runs unchanged on Python 3.11-3.13.
"""

MATCH_WEIGHT = {"Positive": 1.0, "Negative": 1.0, "Neutral": 0.9}
# CREDIT[label][other]: how much the other annotator's `other` backs this annotator's `label`.
CREDIT = {
    "Positive": {"Neutral": 0.25, "Negative": 0.0},
    "Negative": {"Neutral": 0.25, "Positive": 0.0},
    "Neutral": {"Positive": 0.5, "Negative": 0.5},
}


def choices_of(annotation):
    """Every selected choice of the annotation, in order, once each."""
    picked = []
    for region in annotation.get("result") or []:
        if region.get("type") == "choices":
            for choice in (region.get("value") or {}).get("choices") or []:
                if choice not in picked:
                    picked.append(choice)
    return picked


def label_scores(choices_1, choices_2):
    """{choice: score} for every choice either annotator picked."""
    scores = {}
    for choice in choices_1 + [c for c in choices_2 if c not in choices_1]:
        if choice in choices_1 and choice in choices_2:
            scores[choice] = MATCH_WEIGHT.get(choice, 1.0)
        else:
            others = choices_2 if choice in choices_1 else choices_1
            table = CREDIT.get(choice, {})
            scores[choice] = max((table.get(other, 0.0) for other in others), default=0.0)
    return scores


def agreement(annotation_1, annotation_2, per_label=False):
    scores = label_scores(choices_of(annotation_1), choices_of(annotation_2))
    if per_label:
        return scores
    if not scores:
        return 1.0  # both left the question empty
    return sum(scores.values()) / len(scores)
