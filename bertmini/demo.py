"""`make demo`: does pretraining work, and does it help? Answered in minutes on a laptop CPU.

1. Pretrain a BERT with MLM + NSP on the embedded corpus, with a WordPiece vocabulary trained
   on that corpus (the profile's recipe: under `cpu` a tiny BERT, 2 layers, hidden 128).
2. Fine-tune it on the embedded sentiment task.
3. Fine-tune the same architecture from random weights: same data, steps, learning rate.
4. Repeat 2 and 3 with a few seeds, print a table and save the curves as PNG.

The sentiment task's test set uses only *held-out* polarity words, which never carry a label
in fine-tuning. The from-scratch model has never seen them, so it guesses; the pretrained model
met them in the corpus's reviews, next to the words it did get labels for, and can place them.
The gap between the two arms on that test set is what pretraining bought. A from-scratch
model's guess depends on where its random embeddings happen to point, so both arms are averaged
over several fine-tuning seeds.
"""

import json
import statistics
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: the demo runs in a terminal
import matplotlib.pyplot as plt  # noqa: E402

from .course import choose_device, choose_precision, get_profile  # noqa: E402
from .recipes import finetune, pretrain  # noqa: E402

SEEDS = (0, 1, 2)  # fine-tuning seeds; the pretraining seed is 0


def main(out_dir: str | Path = "demo_out", profile=None, seeds=SEEDS) -> dict:
    """Run the demo, print the results table, write results.json and PNGs into `out_dir`.

    `profile` (a name or a Profile; default: $BERTMINI_PROFILE, else by hardware) sets every size.
    """
    profile = get_profile(profile)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    precision = choose_precision(choose_device())  # fp32 on a CPU, bf16/fp16 autocast on GPUs
    common = dict(profile=profile, log_every=10, checkpoint_every=None, precision=precision)

    print(
        f"1/3 pretraining a {profile.preset} BERT on the embedded corpus "
        f"({profile.pretrain_steps} steps, {precision}, profile {profile.name!r}) ..."
    )
    _, _, pretrain_history = pretrain(
        out_dir / "pretrained", seed=0, eval_every=max(1, profile.pretrain_steps // 5), **common
    )
    pretrained_end = pretrain_history[-1]
    pretrain_minutes = (time.perf_counter() - start) / 60

    arms = {"pretrained": [], "from scratch": []}
    for i, seed in enumerate(seeds):
        for arm in arms:
            step = 2 if arm == "pretrained" else 3
            print(f"{step}/3 fine-tuning, {arm}, seed {seed} ({i + 1} of {len(seeds)}) ...")
            _, _, history, results = finetune(
                out_dir / f"finetuned-{arm.replace(' ', '-')}-{seed}",
                out_dir / "pretrained",
                from_scratch=arm == "from scratch",
                seed=seed,
                **common,
            )
            arms[arm].append((history, results))

    def mean_accuracy(arm: str, split: str) -> float:
        return statistics.fmean(results[split]["accuracy"] for _, results in arms[arm])

    results = {
        "mlm_accuracy": pretrained_end["eval_mlm_accuracy"],
        "nsp_accuracy": pretrained_end["eval_nsp_accuracy"],
        "sentiment": {
            arm: {split: mean_accuracy(arm, split) for split in ("validation", "test")}
            for arm in arms
        },
        "sentiment_test_per_seed": {
            arm: [results["test"]["accuracy"] for _, results in runs] for arm, runs in arms.items()
        },
        "pretrain_minutes": pretrain_minutes,
        "minutes": (time.perf_counter() - start) / 60,
        "settings": {"profile": profile.name, "precision": precision, "seeds": list(seeds)},
    }
    (out_dir / "results.json").write_text(json.dumps(results, indent=2))
    _plot(pretrain_history, {arm: runs[0][0] for arm, runs in arms.items()}, out_dir)
    print(results_table(results))
    print(f"plots: {out_dir / 'pretraining.png'}, {out_dir / 'finetuning.png'}")
    return results


def results_table(results: dict) -> str:
    """The demo's results as a text table."""
    sentiment = results["sentiment"]
    pre, scratch = sentiment["pretrained"], sentiment["from scratch"]
    gap = 100 * (pre["test"] - scratch["test"])
    seeds = len(results["settings"]["seeds"])
    rows = [
        ("pretraining: MLM accuracy (validation)", f"{100 * results['mlm_accuracy']:.1f}%"),
        ("pretraining: NSP accuracy (validation)", f"{100 * results['nsp_accuracy']:.1f}%"),
        (f"sentiment, mean of {seeds} fine-tuning seeds:", ""),
        ("  pretrained: validation (seen words)", f"{100 * pre['validation']:.1f}%"),
        ("  from scratch: validation (seen words)", f"{100 * scratch['validation']:.1f}%"),
        ("  pretrained: test (held-out words)", f"{100 * pre['test']:.1f}%"),
        ("  from scratch: test (held-out words)", f"{100 * scratch['test']:.1f}%"),
        ("pretraining gain on held-out words", f"{gap:+.1f} points"),
        ("wall time (pretraining)", f"{results['pretrain_minutes']:.1f} min"),
        ("wall time (all)", f"{results['minutes']:.1f} min"),
    ]
    width = max(len(name) for name, _ in rows)
    line = "-" * (width + 14)
    return "\n".join([line, *(f"{name:<{width}}  {value:>10}" for name, value in rows), line])


def _plot(pretrain_history: list[dict], finetuning: dict[str, list[dict]], out_dir: Path) -> None:
    from .viz import plot_history

    plt.close(plot_history(pretrain_history, save=out_dir / "pretraining.png"))
    keys = ("loss", "accuracy")
    figure, axes = plt.subplots(1, len(keys), figsize=(5 * len(keys), 3.5))
    for axis, key in zip(axes, keys, strict=True):
        for name, history in finetuning.items():
            steps = [row["step"] for row in history if key in row]
            axis.plot(steps, [row[key] for row in history if key in row], label=name, alpha=0.8)
        axis.set_xlabel("step")
        axis.set_title(f"fine-tuning {key} (first seed)")
        axis.legend()
    figure.tight_layout()
    figure.savefig(out_dir / "finetuning.png", dpi=100)
    plt.close(figure)
