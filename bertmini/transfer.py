"""Does pretraining transfer? Three arms fine-tuned on the same task (chapter 08, `make demo`).

The embedded sentiment task's test set uses only *held-out* polarity words, which never carry
a label in fine-tuning (`bertmini.data.corpus.sentiment_task`). So its test accuracy measures
what a model knew about those words *before* fine-tuning. Three arms get the same task, the
same number of steps and the same seeds; each reads the task with its own vocabulary:

- **a real pretrained BERT**: all-MiniLM-L6-v2 (6 layers, hidden 384), pretrained by others on
  about a billion sentences of English, on GPUs for days. It met the held-out words in real text.
- **ours**: the profile's BERT pretrained on the embedded corpus (chapter 07): a few million
  generated words, minutes of a CPU.
- **from scratch**: our architecture with random weights: no pretraining at all.

The difference between two arms is paired by seed (the same seed draws the same batches and the
same new classifier), and `paired_interval` gives its 95% confidence interval over the seeds:
when it excludes 0, the gain is not the luck of a few seeds.
"""

import math
import statistics
from dataclasses import dataclass
from pathlib import Path

import torch

from .course import get_profile
from .data.corpus import sentiment_task
from .hub import RealWeightsMissing, real_bert_path
from .model import BertForPreTraining
from .recipes import finetune
from .tokenizer import Tokenizer


@dataclass(frozen=True)
class Arm:
    """One fine-tuning arm: a model directory, and whether to start from its weights."""

    name: str
    model_dir: Path
    from_scratch: bool = False  # the same architecture and vocabulary, random weights
    lr: float | None = None  # peak fine-tuning learning rate; None: the profile's


def finetune_arm(
    arm: Arm, seeds, steps=None, num_train=None, profile=None, max_seq_len=None
) -> list[dict]:
    """Fine-tune `arm` once per seed on the embedded sentiment task.

    `num_train` keeps only the first that many labelled training examples (a learning curve).
    Returns, per seed, {split: metrics} for "validation" and "test" (metrics: accuracy, loss).
    """
    splits = sentiment_task(seed=0)  # the same examples for every arm and seed
    if num_train is not None:
        splits["train"] = splits["train"][:num_train]
    results = []
    for seed in seeds:
        _, _, _, result = finetune(
            None,
            arm.model_dir,
            task=splits,
            from_scratch=arm.from_scratch,
            steps=steps,
            lr=arm.lr,
            max_seq_len=max_seq_len,
            profile=get_profile(profile),
            seed=seed,
            progress=False,
            log_every=max(1, (steps or 10) // 2),
        )
        results.append(result)
    return results


# Two-sided 95% quantiles of Student's t for 1..10 degrees of freedom.
_T_975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228)


def t_quantile_975(degrees_of_freedom: int) -> float:
    """The 97.5% quantile of Student's t (a table to 10 degrees of freedom, then a series)."""
    if degrees_of_freedom < 1:
        raise ValueError("an interval needs at least two seeds (one degree of freedom)")
    if degrees_of_freedom <= len(_T_975):
        return _T_975[degrees_of_freedom - 1]
    z, n = 1.959964, degrees_of_freedom  # Cornish-Fisher expansion around the normal quantile
    return z + (z**3 + z) / (4 * n) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * n**2)


def paired_interval(first: list[float], second: list[float]) -> tuple[float, float, float]:
    """Mean of first[i] - second[i] over seeds, and its 95% confidence interval (t-based).

    Returns (mean, low, high). The seeds pair the runs: the same seed gives both arms the same
    batches, so the per-seed differences are what varies, and their spread sets the interval.
    """
    if len(first) != len(second) or len(first) < 2:
        raise ValueError(
            f"need the same number (>= 2) of runs in both arms, got {len(first)} and {len(second)}"
        )
    differences = [a - b for a, b in zip(first, second, strict=True)]
    mean = statistics.fmean(differences)
    half_width = t_quantile_975(len(differences) - 1) * statistics.stdev(differences)
    half_width /= math.sqrt(len(differences))
    return mean, mean - half_width, mean + half_width


def masked_word_accuracy(model_dir: Path, items: list, max_len: int | None = None) -> float:
    """Share of probe `items` (corpus.ProbeItem) whose correct word the MLM head of the model
    in `model_dir` scores above the incorrect one (chance 0.5). Items whose words are not single
    WordPieces, or longer than `max_len` tokens (default: the model's positions; pass the
    length it was pretrained at, as positions beyond it are untrained), are left out."""
    tokenizer = Tokenizer.from_pretrained(model_dir)
    model = BertForPreTraining.from_pretrained(model_dir).eval()
    max_len = max_len or model.config.max_position_embeddings
    right = used = 0
    for item in items:
        ids = tokenizer.encode(item.text)
        words = [tokenizer.tokenize(word) for word in (item.correct, item.incorrect)]
        if len(ids) > max_len or any(len(w) != 1 for w in words):
            continue
        with torch.no_grad():
            logits = model(torch.tensor([ids])).mlm_logits[0, ids.index(tokenizer.mask_token_id)]
        correct, wrong = tokenizer.convert_tokens_to_ids([w[0] for w in words])
        right, used = right + int(logits[correct] > logits[wrong]), used + 1
    if used == 0:
        raise ValueError("no probe item fits this model's vocabulary and length")
    return right / used


def real_bert_dir() -> Path | None:
    """all-MiniLM-L6-v2's folder (`bertmini.hub.real_bert_path`), or None where there is none."""
    try:
        return real_bert_path()
    except RealWeightsMissing:
        return None


def standard_arms(our_dir: Path | None, real_dir: Path | None = None, real_lr=1e-4) -> list:
    """The arms: a real BERT (when `real_dir` is given, e.g. `real_bert_dir()`), ours pretrained
    and ours from scratch (when `our_dir` is given).

    The real BERT is fine-tuned at `real_lr`, within BERT's usual range for a model of its size;
    ours at the profile's rate (a tiny model trained briefly wants bigger steps).
    """
    arms = [] if real_dir is None else [Arm("real BERT (MiniLM)", Path(real_dir), lr=real_lr)]
    if our_dir is not None:
        arms.append(Arm("ours, pretrained", Path(our_dir)))
        arms.append(Arm("from scratch", Path(our_dir), from_scratch=True))
    return arms


def compare(arms: list, seeds: dict, steps=None, profile=None, num_train=None) -> dict:
    """Fine-tune every arm with its seeds; {arm name: {"validation": [...], "test": [...]}}.

    `seeds` maps an arm's name to its seeds (e.g. fewer for the slow real BERT); a name missing
    from it gets seeds["default"]. The accuracies are listed in the order of the seeds.
    """
    accuracies = {}
    for arm in arms:
        arm_seeds = seeds.get(arm.name, seeds["default"])
        print(f"fine-tuning {arm.name}: {len(arm_seeds)} seeds ...", flush=True)
        runs = finetune_arm(arm, arm_seeds, steps=steps, num_train=num_train, profile=profile)
        accuracies[arm.name] = {
            split: [run[split]["accuracy"] for run in runs] for split in ("validation", "test")
        }
    return accuracies


def results_table(accuracies: dict, baseline: str = "from scratch") -> str:
    """A text table: per arm the mean validation and test accuracy and each seed's test accuracy;
    per arm but the baseline, its paired gain over the baseline with a 95% interval."""
    lines = [f"{'arm':<20} {'validation':>10} {'test':>6}   test per seed (held-out words)"]
    for name, splits in accuracies.items():
        per_seed = " ".join(f"{100 * a:.1f}" for a in splits["test"])
        lines.append(
            f"{name:<20} {100 * statistics.fmean(splits['validation']):9.1f}% "
            f"{100 * statistics.fmean(splits['test']):5.1f}%   {per_seed}"
        )
    base = accuracies[baseline]["test"]
    for name, splits in accuracies.items():
        if name == baseline:
            continue
        n = min(len(splits["test"]), len(base))
        line = f"gain of {name} over {baseline} on held-out words: "
        if n < 2:  # one pair of runs: a difference, but no spread to measure
            gain = splits["test"][0] - base[0]
            lines.append(line + f"{100 * gain:+.1f} points (one seed: no interval)")
            continue
        mean, low, high = paired_interval(splits["test"][:n], base[:n])
        lines.append(
            line + f"{100 * mean:+.1f} points, "
            f"95% interval [{100 * low:+.1f}, {100 * high:+.1f}] over {n} paired seeds"
        )
    return "\n".join(lines)
