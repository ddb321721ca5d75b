"""The classic transfer figure: held-out test accuracy against the number of labelled examples.

    python scripts/transfer_curve.py                     # writes assets/transfer_curve.png
    python scripts/transfer_curve.py --sizes 16,64 --seeds 0,1 --steps 40   # a quicker look

Three arms, each fine-tuned on the first N examples of the embedded sentiment task (the same N
examples for every arm and seed), for the same number of steps, over several seeds: a real
pretrained BERT (all-MiniLM-L6-v2), the `cpu` profile's model pretrained on the embedded corpus
(`recipes.pretrained()`, cached), and that architecture from random weights. The test set uses
only polarity words that never carry a label, so it shows what each arm knew before fine-tuning.
Error bars: the standard deviation over seeds. The numbers go to assets/transfer_curve.json.
15.5 min with the defaults on this project's 2-core CPU (one thread, 2026-11-30, machine shared).
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, uninstalled

from bertmini.recipes import pretrained  # noqa: E402
from bertmini.transfer import compare, real_bert_dir, standard_arms  # noqa: E402

ASSETS = Path(__file__).resolve().parents[1] / "assets"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="16,64,256,1024,4000", help="labelled examples")
    parser.add_argument("--seeds", default="0,1,2", help="fine-tuning seeds of every arm")
    parser.add_argument("--steps", type=int, default=100, help="fine-tuning steps of every run")
    parser.add_argument("--profile", default="cpu", help="the profile of our pretrained model")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    seeds = [int(seed) for seed in args.seeds.split(",")]

    start = time.perf_counter()
    arms = standard_arms(pretrained(args.profile), real_bert_dir())
    curves = {arm.name: {} for arm in arms}
    for size in sizes:
        print(f"{size} labelled examples", flush=True)
        accuracies = compare(
            arms, {"default": seeds}, steps=args.steps, profile=args.profile, num_train=size
        )
        for name, splits in accuracies.items():
            curves[name][size] = splits["test"]
    minutes = (time.perf_counter() - start) / 60

    figure, axis = plt.subplots(figsize=(6.5, 4))
    for name, by_size in curves.items():
        means = [statistics.fmean(by_size[size]) for size in sizes]
        spreads = [statistics.pstdev(by_size[size]) for size in sizes]
        axis.errorbar(sizes, means, yerr=spreads, marker="o", capsize=3, label=name)
    axis.axhline(0.5, color="k", lw=1, ls=":", label="chance")
    axis.set_xscale("log")
    axis.set(
        xlabel="labelled training examples (log scale)",
        ylabel="test accuracy, held-out polarity words",
        ylim=(0.3, 1.02),
        title=f"Transfer: {args.steps} fine-tuning steps, mean ± sd over {len(seeds)} seeds",
    )
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(ASSETS / "transfer_curve.png", dpi=110)
    record = {"curves": curves, "steps": args.steps, "seeds": seeds, "minutes": minutes}
    (ASSETS / "transfer_curve.json").write_text(json.dumps(record, indent=1))
    print(f"wrote assets/transfer_curve.png and .json ({minutes:.1f} min)")


if __name__ == "__main__":
    main()
