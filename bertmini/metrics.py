"""Classification metrics: accuracy, macro-F1, the confusion matrix, and token-level F1.

Accuracy alone hides a classifier that ignores a rare class; macro-F1 (the mean of each class's
F1) does not. For tagging, most words carry the "other" tag, so token-level F1 counts only the
words whose true or predicted tag is something else, as NER's token-level scores do.
Chapter 08 uses these; `finetune`, `evaluate` and the recipes report them.
"""

from collections.abc import Sequence


def confusion_matrix(predicted: Sequence[int], gold: Sequence[int], num_labels: int) -> list:
    """matrix[g][p] = how many examples of true label g were predicted as p."""
    if len(predicted) != len(gold):
        raise ValueError(f"{len(predicted)} predictions for {len(gold)} labels")
    matrix = [[0] * num_labels for _ in range(num_labels)]
    for p, g in zip(predicted, gold, strict=True):
        matrix[g][p] += 1
    return matrix


def classification_metrics(
    predicted: Sequence[int], gold: Sequence[int], num_labels: int
) -> dict[str, float]:
    """accuracy and macro_f1 (classes absent from both gold and predictions are left out)."""
    if not gold:
        raise ValueError("no examples to score")
    matrix = confusion_matrix(predicted, gold, num_labels)
    f1s = []
    for label in range(num_labels):
        true_positive = matrix[label][label]
        gold_count = sum(matrix[label])
        predicted_count = sum(row[label] for row in matrix)
        if gold_count or predicted_count:
            f1s.append(2 * true_positive / (gold_count + predicted_count))
    correct = sum(matrix[label][label] for label in range(num_labels))
    return {"accuracy": correct / len(gold), "macro_f1": sum(f1s) / len(f1s)}


def token_f1(predicted: Sequence[int], gold: Sequence[int], other_label: int = 0) -> float:
    """Micro F1 over the tags that are not `other_label` (words, not WordPieces)."""
    true_positive = sum(p == g != other_label for p, g in zip(predicted, gold, strict=True))
    predicted_count = sum(p != other_label for p in predicted)
    gold_count = sum(g != other_label for g in gold)
    if predicted_count + gold_count == 0:
        return 1.0
    return 2 * true_positive / (predicted_count + gold_count)


def format_confusion(matrix: list, label_names: Sequence[str]) -> str:
    """The confusion matrix as text: one row per true label, one column per predicted label."""
    width = max(6, *(len(name) for name in label_names), *(len(str(n)) for r in matrix for n in r))
    lines = [" " * (width + 8) + "predicted"]
    lines.append("true".ljust(width + 2) + "".join(n.rjust(width + 1) for n in label_names))
    for name, row in zip(label_names, matrix, strict=True):
        lines.append(name.ljust(width + 2) + "".join(str(n).rjust(width + 1) for n in row))
    return "\n".join(lines)
