"""`make demo`: does pretraining work, and does it help? Answered in minutes on a laptop CPU.

1. Pretrain a mini BERT (4 layers, hidden 256) with MLM + NSP on the embedded corpus, with a
   WordPiece vocabulary trained on that corpus.
2. Fine-tune it on the embedded sentiment task.
3. Fine-tune the same architecture from random weights, same data, steps, learning rate, seed.
4. Print a table and save the curves as PNG.

The sentiment task's test set uses only *held-out* polarity words, which never carry a label
in fine-tuning. The from-scratch model has never seen them, so it guesses; the pretrained model
met them in the corpus's reviews, next to the words it did get labels for, and can place them.
The gap between the two arms on that test set is what pretraining bought.
"""

import json
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: the demo runs in a terminal
import matplotlib.pyplot as plt  # noqa: E402

from .recipes import finetune, pretrain  # noqa: E402

# Sized to finish in under 10 minutes on 2 CPU cores, data and tokenizer included. A short run
# from scratch learns faster with pre-LN (stable at a high learning rate) and without dropout
# (there is too little training to overfit): the "cramming" recipe.
PRETRAIN = dict(
    preset="mini",
    num_documents=3000,
    vocab_size=2000,
    max_seq_len=128,
    steps=550,
    batch_size=16,
    lr=2e-3,
    model_options=dict(
        pre_layer_norm=True, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0
    ),
)
FINETUNE = dict(max_seq_len=48, steps=300, batch_size=32, lr=5e-4)
SEED = 0


def main(out_dir: str | Path = "demo_out") -> dict:
    """Run the demo, print the results table, write results.json and PNGs into `out_dir`."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    common = dict(seed=SEED, log_every=10, checkpoint_every=None)
    pretrain_options = dict(eval_every=100)

    print(f"1/3 pretraining a {PRETRAIN['preset']} BERT on the embedded corpus ...")
    _, _, pretrain_history = pretrain(
        out_dir / "pretrained", corpus="embedded", **PRETRAIN, **common, **pretrain_options
    )
    pretrained_end = pretrain_history[-1]

    print("2/3 fine-tuning the pretrained model on the sentiment task ...")
    arms = {}
    _, _, history, results = finetune(
        out_dir / "finetuned", out_dir / "pretrained", **FINETUNE, **common
    )
    arms["pretrained"] = (history, results)
    print("3/3 fine-tuning the same model from random weights, same data and budget ...")
    _, _, history, results = finetune(
        out_dir / "from_scratch", out_dir / "pretrained", from_scratch=True, **FINETUNE, **common
    )
    arms["from scratch"] = (history, results)
    minutes = (time.perf_counter() - start) / 60

    results = {
        "mlm_accuracy": pretrained_end["eval_mlm_accuracy"],
        "nsp_accuracy": pretrained_end["eval_nsp_accuracy"],
        "sentiment": {
            arm: {split: metrics["accuracy"] for split, metrics in split_results.items()}
            for arm, (_, split_results) in arms.items()
        },
        "minutes": minutes,
        "settings": {"pretrain": PRETRAIN, "finetune": FINETUNE, "seed": SEED},
    }
    (out_dir / "results.json").write_text(json.dumps(results, indent=2))
    _plot(pretrain_history, arms, out_dir)
    print(results_table(results))
    print(f"plots: {out_dir / 'pretraining.png'}, {out_dir / 'finetuning.png'}")
    return results


def results_table(results: dict) -> str:
    """The demo's results as a text table."""
    sentiment = results["sentiment"]
    pre, scratch = sentiment["pretrained"], sentiment["from scratch"]
    gap = 100 * (pre["test"] - scratch["test"])
    rows = [
        ("pretraining: MLM accuracy (validation)", f"{100 * results['mlm_accuracy']:.1f}%"),
        ("pretraining: NSP accuracy (validation)", f"{100 * results['nsp_accuracy']:.1f}%"),
        ("sentiment, pretrained: validation (seen words)", f"{100 * pre['validation']:.1f}%"),
        ("sentiment, from scratch: validation (seen words)", f"{100 * scratch['validation']:.1f}%"),
        ("sentiment, pretrained: test (held-out words)", f"{100 * pre['test']:.1f}%"),
        ("sentiment, from scratch: test (held-out words)", f"{100 * scratch['test']:.1f}%"),
        ("pretraining gain on held-out words", f"{gap:+.1f} points"),
        ("wall time", f"{results['minutes']:.1f} min"),
    ]
    width = max(len(name) for name, _ in rows)
    line = "-" * (width + 14)
    return "\n".join([line, *(f"{name:<{width}}  {value:>10}" for name, value in rows), line])


def _plot(pretrain_history: list[dict], arms: dict, out_dir: Path) -> None:
    try:
        from .viz import plot_history

        plt.close(plot_history(pretrain_history, save=out_dir / "pretraining.png"))
    except ImportError:  # the viz package is optional here: draw the basic curves ourselves
        _plot_curves(
            {"pretraining": pretrain_history},
            ("loss", "mlm_accuracy", "nsp_accuracy"),
            out_dir / "pretraining.png",
        )
    finetuning = {arm: history for arm, (history, _) in arms.items()}
    _plot_curves(finetuning, ("loss", "accuracy"), out_dir / "finetuning.png")


def _plot_curves(histories: dict[str, list[dict]], keys: tuple[str, ...], path: Path) -> None:
    figure, axes = plt.subplots(1, len(keys), figsize=(5 * len(keys), 3.5))
    for axis, key in zip(axes, keys, strict=True):
        for name, history in histories.items():
            steps = [row["step"] for row in history if key in row]
            axis.plot(steps, [row[key] for row in history if key in row], label=name, alpha=0.8)
        axis.set_xlabel("step")
        axis.set_title(key.replace("_", " "))
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
