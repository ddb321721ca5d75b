"""Looking at position vectors: what tells BERT that a token is third rather than tenth?

* `plot_sinusoids`: the fixed sinusoid matrix (positions x dims). Early dimensions oscillate
  fast, late ones slowly: each position gets a unique "barcode", like the digits of a clock.
* `plot_position_similarity`: the dot product PE[p] . PE[p + k] against the offset k, for
  several starting positions p. For sinusoids the curves lie on top of each other (it depends
  on k alone) and fall with |k|: nearby positions look alike.
* `plot_learned_positions`: the same two views of a trained model's learned position table
  (BERT's choice); after training, neighbouring positions end up similar too.

All functions take any (positions, dim) matrix, so sinusoids and learned tables compare directly.

Shown in chapter 02 (`chapters/02_positional_encoding.ipynb`).
"""

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn

from ..positional import sinusoidal_encoding
from .render import new_figure


def _check_matrix(encoding) -> np.ndarray:
    matrix = encoding.detach().float().cpu().numpy() if torch.is_tensor(encoding) else encoding
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.ndim != 2 or min(matrix.shape) < 2:
        raise ValueError(f"expected a (positions, dim) matrix with both >= 2, got {matrix.shape}")
    return matrix


def plot_sinusoids(num_positions: int = 64, dim: int = 128, encoding=None) -> Figure:
    """The sinusoid matrix as a heatmap (left) and four of its columns as curves (right).

    encoding: a (positions, dim) matrix to show instead of `sinusoidal_encoding(...)`.
    """
    matrix = _check_matrix(
        sinusoidal_encoding(num_positions, dim) if encoding is None else encoding
    )
    num_positions, dim = matrix.shape
    figure = new_figure(11.0, 4.0)
    left, right = figure.subplots(1, 2, width_ratios=[1.3, 1])
    image = left.imshow(matrix, cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto")
    left.set_xlabel("dimension")
    left.set_ylabel("position")
    left.set_title(f"sinusoidal encoding: {num_positions} positions x {dim} dims")
    figure.colorbar(image, ax=left, label="value")
    # Even columns are sines; their frequency falls from one wave per ~6 positions to almost none.
    for column in sorted({0, 2 * (dim // 16), 2 * (dim // 8), 2 * (dim // 4)}):
        right.plot(matrix[:, column], label=f"dim {column}")
    right.set_xlabel("position")
    right.set_title("slow and fast waves (sin columns)")
    right.legend(fontsize=8, loc="lower left")
    figure.tight_layout()
    return figure


def similarity_by_offset(encoding, starts=(0, 8, 16), max_offset: int | None = None):
    """Dot products PE[p] . PE[p + k] for each start p and offsets k = 0..max_offset.

    Returns (offsets (K,), similarities (len(starts), K)); NaN where p + k is past the end.
    """
    matrix = _check_matrix(encoding)
    num_positions = matrix.shape[0]
    for start in starts:
        if not 0 <= start < num_positions:
            raise ValueError(f"start {start} is outside the {num_positions} positions")
    max_offset = num_positions - 1 - min(starts) if max_offset is None else max_offset
    offsets = np.arange(max_offset + 1)
    similarities = np.full((len(starts), len(offsets)), np.nan)
    for row, start in enumerate(starts):
        valid = offsets[start + offsets < num_positions]
        similarities[row, valid] = matrix[start + valid] @ matrix[start]
    return offsets, similarities


def plot_position_similarity(
    encoding=None, starts=(0, 8, 16), title: str = "sinusoidal", cosine: bool = False
) -> Figure:
    """Similarity of positions: the full position x position matrix and its value vs offset.

    encoding: (positions, dim); default the 64 x 128 sinusoids. cosine=True normalises each
    row first (fair for learned tables, whose rows have different lengths).
    """
    matrix = _check_matrix(sinusoidal_encoding(64, 128) if encoding is None else encoding)
    if cosine:
        matrix = matrix / np.linalg.norm(matrix, axis=1, keepdims=True).clip(min=1e-12)
    figure = new_figure(11.0, 4.0)
    left, right = figure.subplots(1, 2)
    image = left.imshow(matrix @ matrix.T, cmap="viridis", aspect="auto")
    left.set_xlabel("position")
    left.set_ylabel("position")
    measure = "cosine similarity" if cosine else "dot product"
    left.set_title(f"{title}: {measure} of every pair of positions")
    figure.colorbar(image, ax=left)
    offsets, similarities = similarity_by_offset(matrix, starts)
    for start, row in zip(starts, similarities, strict=True):
        right.plot(offsets, row, label=f"from position {start}")
    right.set_xlabel("offset k")
    right.set_ylabel(f"{measure}  PE[p] · PE[p+k]")
    right.set_title("similarity against offset")
    right.legend(fontsize=8)
    figure.tight_layout()
    return figure


def learned_position_table(model) -> torch.Tensor:
    """The (max_positions, hidden) learned position embedding table of a bertmini model."""
    if torch.is_tensor(model):
        return model.detach()
    candidates = [
        module
        for name, module in model.named_modules()
        if isinstance(module, nn.Embedding) and "position" in name
    ]
    if not candidates:
        raise ValueError(
            f"{type(model).__name__} has no learned position embedding (an nn.Embedding whose "
            "name contains 'position'); sinusoidal models have nothing to learn: use "
            "plot_sinusoids instead"
        )
    return candidates[0].weight.detach()


def plot_learned_positions(
    model, num_positions: int = 64, starts=(0, 8, 16), title: str = "learned positions"
) -> Figure:
    """The first `num_positions` learned position vectors of `model` (or a table): cosine views.

    Untrained, every pair of positions is unrelated (a bright diagonal, noise elsewhere);
    after training, the diagonal widens into a band: neighbouring positions became similar.
    """
    table = learned_position_table(model)[:num_positions]
    return plot_position_similarity(table, starts, title=title, cosine=True)
