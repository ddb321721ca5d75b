"""Looking at attention: which tokens does each head read when it builds a token's new vector?

A BERT layer has several heads; each head gives every token (a *query*) a probability
distribution over all tokens (the *keys*): a (seq, seq) matrix whose rows sum to 1. A model
with L layers and H heads therefore holds L x H such matrices for one sentence:

    attentions: (layers, heads, seq, seq)     attentions[l, h, i, j] = how much token i reads j

Three pictures of the same numbers:

* `plot_attention_heatmap`: one head as a (query x key) heatmap; exact, good for short inputs.
* `plot_head_view`: tokens in two columns (queries left, keys right) joined by lines whose
  opacity is the weight, one colour per head; filters keep only sentence A or B of a pair, so
  you can see which heads look across the [SEP] (what NSP needs).
* `plot_attention_grid`: every head of every layer as a thumbnail, to spot the patterns
  (attend to previous token, to [SEP], to itself, broadly...) at a glance.

The weights come from the model's explicit attention path (`output_attentions=True`), so what
you see is exactly what the softmax produced; works for any bertmini model (`BertModel`,
`BertForPreTraining`, `BertForSequenceClassification`, own or loaded weights).

Shown in chapters 01 (`chapters/01_attention.ipynb`: the heatmap) and 09
(`chapters/09_what_bert_learned.ipynb`: the head view and the grid).
"""

from dataclasses import dataclass

import matplotlib as mpl
import numpy as np
import torch
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from .render import new_figure

SEGMENTS = {"all": None, "A": 0, "B": 1}  # head-view filters: which sentence of a pair to keep
KINDS = ("head_view", "heatmap", "grid")


@dataclass
class AttentionMaps:
    """The attention weights of one input, ready to plot.

    tokens: seq wordpieces (with [CLS]/[SEP]); segment_ids: seq ints, 0 = sentence A, 1 = B;
    weights: (layers, heads, seq, seq) float tensor on the CPU, each row sums to 1.
    """

    tokens: list[str]
    segment_ids: list[int]
    weights: torch.Tensor

    @property
    def num_layers(self) -> int:
        return self.weights.shape[0]

    @property
    def num_heads(self) -> int:
        return self.weights.shape[1]

    def head(self, layer: int, head: int) -> torch.Tensor:
        """(seq, seq) weights of one head; negative indices count from the end."""
        return self.weights[self._layer(layer), self._head(head)]

    def _layer(self, layer: int) -> int:
        return _check_index(layer, self.num_layers, "layer")

    def _head(self, head: int) -> int:
        return _check_index(head, self.num_heads, "head")


def _check_index(index: int, size: int, name: str) -> int:
    if not isinstance(index, (int, np.integer)) or isinstance(index, bool):
        raise TypeError(f"{name} must be an int, got {type(index).__name__}")
    if not -size <= index < size:
        raise ValueError(f"{name} {index} is out of range: this model has {size} (0..{size - 1})")
    return int(index) % size


def attention_maps(model, tokenizer, text: str, text_pair: str | None = None) -> AttentionMaps:
    """Run `model` on one sentence (or an A/B pair) and collect every head's attention weights.

    The model runs in eval mode (no dropout) without gradients; its mode is restored after.
    """
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module (a bertmini model), got {type(model)}")
    for name, value in (("text", text), ("text_pair", text_pair)):
        if value is not None and not isinstance(value, str):
            raise TypeError(f"{name} must be a string, got {type(value).__name__}")
    if not text or not text.strip():
        raise ValueError("text is empty: give a sentence to look at, e.g. 'the cat sat on the mat'")
    if text_pair is not None and not text_pair.strip():
        text_pair = None  # an empty second box means "one sentence"

    encoded = tokenizer(text, text_pair, return_tensors="pt")
    input_ids = encoded["input_ids"]  # (1, seq)
    segment_ids = encoded.get("token_type_ids")
    if segment_ids is None:
        segment_ids = torch.zeros_like(input_ids)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            output = model(
                input_ids=input_ids.to(device),
                token_type_ids=segment_ids.to(device),
                attention_mask=encoded["attention_mask"].to(device),
                output_attentions=True,
            )
    finally:
        model.train(was_training)

    attentions = getattr(output, "attentions", None)
    if not attentions:
        raise ValueError(
            f"{type(model).__name__} returned no attention weights: the model must be a "
            "Transformer encoder called with output_attentions=True (a bilstm encoder has none)"
        )
    weights = torch.stack([layer[0] for layer in attentions]).float().cpu()  # (L, H, seq, seq)
    return AttentionMaps(
        tokens=list(tokenizer.convert_ids_to_tokens(input_ids[0].tolist())),
        segment_ids=segment_ids[0].tolist(),
        weights=weights,
    )


def _as_numpy(weights) -> np.ndarray:
    return (
        weights.detach().float().cpu().numpy() if torch.is_tensor(weights) else np.asarray(weights)
    )


def plot_attention_heatmap(weights, tokens: list[str], title: str = "attention", ax=None) -> Figure:
    """One head as a heatmap: row i = query token i, column j = key token j, colour = weight.

    weights: (seq, seq), rows summing to 1; tokens: seq labels. The image holds exactly the
    weights (no rescaling); the colour scale runs from 0 to the largest weight.
    """
    weights = _as_numpy(weights)
    if weights.ndim != 2 or weights.shape[0] != weights.shape[1]:
        raise ValueError(f"weights must be a square (seq, seq) matrix, got shape {weights.shape}")
    if len(tokens) != weights.shape[0]:
        raise ValueError(f"got {len(tokens)} tokens for a {weights.shape[0]}-token matrix")
    seq = len(tokens)
    if ax is None:
        side = 1.6 + 0.3 * seq
        figure = new_figure(side + 1.0, side)
        ax = figure.add_subplot()
    figure = ax.figure
    image = ax.imshow(weights, cmap="Blues", vmin=0.0, vmax=max(float(weights.max()), 1e-6))
    ax.set_xticks(range(seq), tokens, rotation=90, fontsize=9)
    ax.set_yticks(range(seq), tokens, fontsize=9)
    ax.set_xlabel("key (attended to)")
    ax.set_ylabel("query (attending)")
    ax.set_title(title)
    figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="weight")
    return figure


def plot_head_view(
    maps: AttentionMaps,
    layer: int = 0,
    heads: list[int] | None = None,
    from_segment: str = "all",
    to_segment: str = "all",
    ax=None,
) -> Figure:
    """Tokens in two columns, queries left and keys right; a line i -> j per pair of tokens.

    Each head draws its lines in its own colour with opacity = attention weight, so the line
    from query i to key j of head h has alpha exactly `maps.weights[layer, h, i, j]`.
    `heads`: which heads to overlay (default all). `from_segment` / `to_segment`: "all", "A"
    or "B" keep only queries / keys of that sentence of an NSP pair.
    """
    layer = maps._layer(layer)
    heads = list(range(maps.num_heads)) if heads is None else [maps._head(h) for h in heads]
    for name, value in (("from_segment", from_segment), ("to_segment", to_segment)):
        if value not in SEGMENTS:
            raise ValueError(f"{name} must be one of {list(SEGMENTS)}, got {value!r}")
    segment_ids = np.asarray(maps.segment_ids)
    queries = _in_segment(segment_ids, SEGMENTS[from_segment])  # indices of kept queries
    keys = _in_segment(segment_ids, SEGMENTS[to_segment])
    seq = len(maps.tokens)

    if ax is None:
        figure = new_figure(4.6, 1.2 + 0.26 * seq)
        ax = figure.add_subplot()
    colours = mpl.colormaps["tab10" if maps.num_heads <= 10 else "tab20"]
    for h in heads:
        weights = _as_numpy(maps.weights[layer, h])  # (seq, seq)
        segments = [[(0.0, -i), (1.0, -j)] for i in queries for j in keys]
        rgba = np.tile(colours(h % colours.N), (len(segments), 1))
        rgba[:, 3] = [weights[i, j] for i in queries for j in keys]  # opacity = weight
        ax.add_collection(LineCollection(segments, colors=rgba, linewidths=2.0, label=f"head {h}"))
    _label_tokens(ax, maps.tokens, set(queries.tolist()), set(keys.tolist()))
    if len(heads) == maps.num_heads:
        shown = "all heads"
    else:
        shown = ("head " if len(heads) == 1 else "heads ") + ", ".join(map(str, heads))
    pair = "" if from_segment == to_segment == "all" else f"  ({from_segment} → {to_segment})"
    ax.set_title(f"layer {layer}, {shown}{pair}", fontsize=11)
    ax.legend(
        handles=[Patch(color=colours(h % colours.N), label=f"head {h}") for h in heads],
        loc="upper center",
        bbox_to_anchor=(0.5, 0.0),
        fontsize=8,
        frameon=False,
        ncol=min(len(heads), 6),
        handlelength=1.0,
        columnspacing=0.8,
    )
    return ax.figure


def _label_tokens(ax, tokens: list[str], queries: set[int], keys: set[int]) -> None:
    """The two columns of token labels; tokens filtered out stay visible but grey, so the
    sentence still reads."""
    for x, align, kept in ((-0.04, "right", queries), (1.04, "left", keys)):
        for i, token in enumerate(tokens):
            colour = "black" if i in kept else "0.75"
            ax.text(x, -i, token, ha=align, va="center", fontsize=10, color=colour)
    ax.set_xlim(-0.55, 1.55)
    ax.set_ylim(-len(tokens) + 0.4, 0.8)
    ax.axis("off")


def _in_segment(segment_ids: np.ndarray, segment: int | None) -> np.ndarray:
    """Indices of the tokens in `segment` (None = all tokens)."""
    if segment is None:
        return np.arange(len(segment_ids))
    return np.flatnonzero(segment_ids == segment)


def plot_attention_grid(maps: AttentionMaps) -> Figure:
    """Every head of every layer as a small heatmap: rows = layers, columns = heads.

    Each thumbnail is scaled to its own largest weight, so weak heads still show a pattern.
    """
    layers, heads = maps.num_layers, maps.num_heads
    cell = 1.3 if heads <= 8 else 1.0
    figure = new_figure(0.6 + cell * heads, 0.8 + cell * layers)
    axes = figure.subplots(layers, heads, squeeze=False)
    for layer in range(layers):
        for head in range(heads):
            ax = axes[layer, head]
            ax.imshow(_as_numpy(maps.weights[layer, head]), cmap="Blues", vmin=0.0)
            ax.set_xticks([])
            ax.set_yticks([])
            if layer == 0:
                ax.set_title(f"head {head}", fontsize=9)
            if head == 0:
                ax.set_ylabel(f"layer {layer}", fontsize=9)
    figure.suptitle(f"attention of every head: {len(maps.tokens)} tokens (query rows, key columns)")
    return figure


def plot_attention(
    maps: AttentionMaps,
    kind: str = "head_view",
    layer: int = 0,
    head: int | None = None,
    from_segment: str = "all",
    to_segment: str = "all",
) -> Figure:
    """One of the three pictures of `maps`; `kind` is "head_view", "heatmap" or "grid".

    head: for the head view, None = overlay all heads; for the heatmap, None = head 0.
    """
    if kind == "head_view":
        heads = None if head is None else [head]
        return plot_head_view(maps, layer, heads, from_segment, to_segment)
    if kind == "heatmap":
        head = 0 if head is None else head
        layer, head = maps._layer(layer), maps._head(head)
        return plot_attention_heatmap(
            maps.head(layer, head), maps.tokens, f"layer {layer}, head {head}"
        )
    if kind == "grid":
        return plot_attention_grid(maps)
    raise ValueError(f"kind must be one of {list(KINDS)}, got {kind!r}")
