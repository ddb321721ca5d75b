"""Looking at token embeddings: do related words end up near each other?

An embedding table has one vector per token: (vocab, hidden), far too many dimensions to see.
PCA finds the two directions along which the chosen vectors vary most and projects onto them:

    X = vectors - mean          # (n, hidden), centred
    X = U S V^T                 # singular value decomposition
    coordinates = X V[:, :2]    # (n, 2): the best 2-D picture in the least-squares sense

A word that WordPiece splits into several pieces is shown at the mean of its pieces' vectors.

No chapter shows it yet; `viz.embeddings_widget` puts it in a notebook.
"""

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn

from .render import new_figure


def pca_2d(vectors: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Project (n, dim) vectors on their first two principal components.

    Returns (coordinates (n, 2), explained (2,)): the share of variance each axis keeps.
    """
    if vectors.ndim != 2 or vectors.shape[0] < 2:
        raise ValueError(
            f"need at least 2 vectors as an (n, dim) matrix, got {tuple(vectors.shape)}"
        )
    centred = vectors.double() - vectors.double().mean(dim=0)  # (n, dim)
    _, singular_values, v_transposed = torch.linalg.svd(centred, full_matrices=False)
    components = v_transposed[:2].T  # (dim, 2)
    coordinates = centred @ components  # (n, 2)
    variance = singular_values**2
    explained = variance[:2] / variance.sum().clamp(min=1e-12)
    if coordinates.shape[1] < 2:  # one-dimensional input: pad with a zero axis
        coordinates = torch.cat([coordinates, torch.zeros_like(coordinates)], dim=1)
        explained = torch.cat([explained, torch.zeros(1, dtype=explained.dtype)])
    return coordinates.float(), explained.float()


def token_embedding_table(model) -> torch.Tensor:
    """The (vocab, hidden) word embedding table of a bertmini (or Hugging Face) model."""
    if torch.is_tensor(model):
        return model.detach()
    if hasattr(model, "get_input_embeddings"):
        return model.get_input_embeddings().weight.detach()
    vocab_size = getattr(getattr(model, "config", None), "vocab_size", None)
    for name, module in model.named_modules():
        if isinstance(module, nn.Embedding) and (
            "word" in name or "token" in name or module.num_embeddings == vocab_size
        ):
            if "position" not in name and "type" not in name:
                return module.weight.detach()
    raise ValueError(f"found no token embedding table (an nn.Embedding) in {type(model).__name__}")


def word_vectors(model, tokenizer, words: list[str]) -> torch.Tensor:
    """(len(words), hidden): each word's embedding, the mean of its WordPiece pieces."""
    if isinstance(words, str):
        raise TypeError("words must be a list of strings, e.g. ['king', 'queen', 'man']")
    table = token_embedding_table(model).float().cpu()
    vectors = []
    for word in words:
        pieces = tokenizer.tokenize(word)
        if not pieces:
            raise ValueError(f"{word!r} gives no tokens; pass words with letters or digits")
        ids = tokenizer.convert_tokens_to_ids(pieces)
        vectors.append(table[torch.as_tensor(ids)].mean(dim=0))
    return torch.stack(vectors)


def plot_embeddings(
    model, tokenizer, words: list[str], groups: list[str] | None = None, title: str | None = None
) -> Figure:
    """A labelled 2-D PCA scatter of the embeddings of `words`.

    groups: an optional label per word (e.g. "animal", "colour"); each group gets a colour.
    """
    if len(words) < 2:
        raise ValueError("give at least two words to compare")
    if groups is not None and len(groups) != len(words):
        raise ValueError(f"got {len(groups)} groups for {len(words)} words; give one per word")
    coordinates, explained = pca_2d(word_vectors(model, tokenizer, words))
    points = coordinates.numpy()
    figure = new_figure(6.5, 5.5)
    ax = figure.add_subplot()
    group_names = list(dict.fromkeys(groups)) if groups else [None]
    for group in group_names:
        keep = np.array([g == group for g in groups]) if groups else np.ones(len(words), bool)
        ax.scatter(points[keep, 0], points[keep, 1], s=36, label=group)
    for word, (x, y) in zip(words, points, strict=True):
        ax.annotate(word, (x, y), xytext=(4, 3), textcoords="offset points", fontsize=10)
    ax.set_xlabel(f"PC 1 ({100 * explained[0]:.0f}% of variance)")
    ax.set_ylabel(f"PC 2 ({100 * explained[1]:.0f}% of variance)")
    ax.set_title(title or f"token embeddings of {len(words)} words (PCA)")
    if groups:
        ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return figure
