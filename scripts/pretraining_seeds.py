"""Is the course's pretraining recipe robust? The same recipe with other pretraining seeds.

    python scripts/pretraining_seeds.py --seeds 1,2        # ~6 min per seed under cpu

For each pretraining seed (it draws the corpus, the vocabulary and the initial weights),
`recipes.pretrain_short_first` pretrains the profile's model, the two masked-word probes of
chapter 08 (section 2) are measured, and the model and the same architecture from scratch are
fine-tuned on the sentiment task with `make demo`'s fine-tuning seeds. Seed 0 is `make demo`'s
own model. Models go to --out/seed<N>.
"""

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, uninstalled

from bertmini.course import get_profile  # noqa: E402
from bertmini.demo import SEEDS, percent, probe_shares  # noqa: E402
from bertmini.recipes import pretrain_short_first  # noqa: E402
from bertmini.transfer import compare, results_table, standard_arms  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="1,2", help="pretraining seeds")
    parser.add_argument("--profile", default="cpu", help="the profile whose recipe to run")
    parser.add_argument("--out", default="runs/pretraining_seeds", help="where the models go")
    args = parser.parse_args()
    profile = get_profile(args.profile)
    torch.set_num_threads(1)  # as make demo: a tiny BERT's products are too small to share
    for seed in (int(s) for s in args.seeds.split(",")):
        start = time.perf_counter()
        model_dir = pretrain_short_first(
            Path(args.out) / f"seed{seed}", profile=profile, seed=seed, progress=False
        )
        stance, review = probe_shares(model_dir, profile.max_seq_len)
        print(
            f"pretraining seed {seed}: stance-word probe {percent(stance)}, review-word probe "
            f"{percent(review)} (chance 50%)",
            flush=True,
        )
        accuracies = compare(standard_arms(model_dir), {"default": list(SEEDS)}, profile=profile)
        print(results_table(accuracies))
        print(f"({(time.perf_counter() - start) / 60:.1f} min)\n", flush=True)


if __name__ == "__main__":
    main()
