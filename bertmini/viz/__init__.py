"""Pictures of what BERT computes: attention, positions, embeddings and training curves.

Every visual is a plain matplotlib Figure (works in a terminal, nbval, GitHub, PDFs); in a
notebook the `*_widget` functions wrap it in core ipywidgets controls. Nothing is fetched from
the network when drawing.

    from bertmini import viz
    viz.attention(model, tokenizer, "the cat sat on the mat", "it was tired")  # head view
    viz.attention(model, tokenizer, "the cat sat", kind="grid")               # layers x heads
    viz.plot_sinusoids(64, 128); viz.plot_learned_positions(model)
    viz.plot_embeddings(model, tokenizer, ["cat", "dog", "red", "blue"])
    viz.plot_history("runs/metrics.jsonl", save="curves.png")
    trainer.callbacks.append(viz.LiveDashboard(update_every_s=1.0))
"""

from .attention import (
    AttentionMaps,
    attention_maps,
    plot_attention,
    plot_attention_grid,
    plot_attention_heatmap,
    plot_head_view,
)
from .dashboard import LiveDashboard, plot_history
from .embeddings import pca_2d, plot_embeddings, word_vectors
from .positions import (
    plot_learned_positions,
    plot_position_similarity,
    plot_sinusoids,
    similarity_by_offset,
)
from .render import figure_to_png, in_notebook
from .widgets import (
    AttentionWidget,
    attention,
    attention_widget,
    embeddings_widget,
    positions_widget,
)

__all__ = [
    "AttentionMaps",
    "AttentionWidget",
    "LiveDashboard",
    "attention",
    "attention_maps",
    "attention_widget",
    "embeddings_widget",
    "figure_to_png",
    "in_notebook",
    "pca_2d",
    "plot_attention",
    "plot_attention_grid",
    "plot_attention_heatmap",
    "plot_embeddings",
    "plot_head_view",
    "plot_history",
    "plot_learned_positions",
    "plot_position_similarity",
    "plot_sinusoids",
    "positions_widget",
    "similarity_by_offset",
    "word_vectors",
]
