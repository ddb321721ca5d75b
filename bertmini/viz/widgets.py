"""Notebook controls around the figures: dropdowns, a sentence box, sliders; and `attention`,
one call from text to an attention picture (a widget in a notebook, else a Figure).

Each widget redraws its matplotlib figure when a control changes and shows it as PNG bytes in
an `ipywidgets.Image`. Only core ipywidgets are used (works with 7.7 on Colab and 8.x), and
nothing is fetched from the network: the picture is made by the kernel, not by JavaScript.

    viz.attention_widget(model, tokenizer, "the cat sat on the mat", "it was tired")

Shown in chapters 02 (`positions_widget`) and 09 (`attention_widget`).
"""

import ipywidgets as widgets

from ..positional import sinusoidal_encoding
from .attention import KINDS, SEGMENTS, AttentionMaps, attention_maps, plot_attention
from .embeddings import plot_embeddings
from .positions import plot_position_similarity, plot_sinusoids
from .render import figure_to_png, in_notebook

KIND_LABELS = {"head view": "head_view", "heatmap": "heatmap", "all heads (grid)": "grid"}


def _dropdown(description: str, options, value, width: str = "150px") -> widgets.Dropdown:
    return widgets.Dropdown(
        description=description,
        options=options,
        value=value,
        style={"description_width": "initial"},
        layout=widgets.Layout(width=width),
    )


def _text(description: str, value: str) -> widgets.Text:
    # continuous_update=False: recompute on Enter / leaving the box, not on every keystroke.
    return widgets.Text(
        description=description,
        value=value,
        continuous_update=False,
        style={"description_width": "initial"},
        layout=widgets.Layout(width="45%"),
    )


def _picture(png: bytes = b"") -> widgets.Image:
    # flex-start: a VBox stretches its children to its full width, which would blow the PNG up.
    return widgets.Image(value=png, format="png", layout=widgets.Layout(align_self="flex-start"))


class AttentionWidget(widgets.VBox):
    """Sentence boxes, view/layer/head/segment dropdowns and the attention picture.

    Attributes for code (and tests): `sentence_a`, `sentence_b` (Text); `kind`, `layer`,
    `head`, `from_segment`, `to_segment` (Dropdown); `image` (Image, PNG bytes); `maps`
    (the current AttentionMaps); `figure` (the last matplotlib Figure drawn).
    """

    def __init__(
        self,
        model,
        tokenizer,
        text: str,
        text_pair: str | None = None,
        kind: str = "head_view",
        layer: int = 0,
        head: int | None = None,
    ):
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {list(KINDS)}, got {kind!r}")
        self.model, self.tokenizer = model, tokenizer
        self.maps: AttentionMaps = attention_maps(model, tokenizer, text, text_pair)
        self.figure = None
        layers, heads = self.maps.num_layers, self.maps.num_heads
        self.sentence_a = _text("sentence A", text)
        self.sentence_b = _text("sentence B", text_pair or "")
        self.kind = _dropdown("view", list(KIND_LABELS.items()), kind, "200px")
        self.layer = _dropdown(
            "layer", [(f"{i}", i) for i in range(layers)], self.maps._layer(layer), "110px"
        )
        # "all", not None: a Dropdown whose value is None shows no selection at all.
        head_options = [("all", "all")] + [(f"{h}", h) for h in range(heads)]
        head = "all" if head is None else self.maps._head(head)
        self.head = _dropdown("head", head_options, head, "110px")
        self.from_segment = _dropdown("from", list(SEGMENTS), "all", "110px")
        self.to_segment = _dropdown("to", list(SEGMENTS), "all", "100px")
        self.status = widgets.HTML("")
        self.image = _picture()
        for control in (self.kind, self.layer, self.head, self.from_segment, self.to_segment):
            control.observe(self._redraw, names="value")
        for box in (self.sentence_a, self.sentence_b):
            box.observe(self._recompute, names="value")
        super().__init__(
            children=[
                widgets.HBox([self.sentence_a, self.sentence_b]),
                widgets.HBox(
                    [self.kind, self.layer, self.head, self.from_segment, self.to_segment]
                ),
                self.status,
                self.image,
            ]
        )
        self._redraw()

    def _recompute(self, _change=None) -> None:
        """The sentences changed: run the model again, then redraw."""
        try:
            self.maps = attention_maps(
                self.model, self.tokenizer, self.sentence_a.value, self.sentence_b.value or None
            )
        except ValueError as error:  # e.g. an empty sentence: say so, keep the old picture
            self.status.value = f"<span style='color:#b00'>{error}</span>"
            return
        self._redraw()

    def _redraw(self, _change=None) -> None:
        head = None if self.head.value == "all" else self.head.value
        self.figure = plot_attention(
            self.maps,
            self.kind.value,
            self.layer.value,
            head,
            self.from_segment.value,
            self.to_segment.value,
        )
        self.image.value = figure_to_png(self.figure)
        maps = self.maps
        self.status.value = (
            f"{len(maps.tokens)} tokens, {maps.num_layers} layers x {maps.num_heads} heads"
        )


def attention_widget(
    model, tokenizer, text: str, text_pair: str | None = None, **view
) -> AttentionWidget:
    """The interactive attention explorer for one sentence (or an A/B pair); `view`: kind,
    layer, head, as `AttentionWidget` takes them."""
    return AttentionWidget(model, tokenizer, text, text_pair, **view)


def attention(model, tokenizer, text: str, text_pair: str | None = None, interactive=None, **view):
    """One call from text to picture: `attention(model, tokenizer, "the cat sat", "it was tired")`.

    `view`: kind ("head_view", "heatmap" or "grid"), layer, head, as `plot_attention` takes
    them. Returns a matplotlib Figure; in a notebook (or with interactive=True) returns the
    widget with layer/head dropdowns and sentence boxes instead (`attention_widget`).
    """
    if view.get("kind", "head_view") not in KINDS:
        raise ValueError(f"kind must be one of {list(KINDS)}, got {view['kind']!r}")
    if in_notebook() if interactive is None else interactive:
        return AttentionWidget(model, tokenizer, text, text_pair, **view)
    return plot_attention(attention_maps(model, tokenizer, text, text_pair), **view)


def _image_box(controls: list, draw) -> widgets.VBox:
    """Controls above one Image; `draw()` returns a Figure and runs again on every change."""
    image = _picture(figure_to_png(draw()))

    def redraw(_change=None):
        image.value = figure_to_png(draw())

    for control in controls:
        control.observe(redraw, names="value")
    box = widgets.VBox([widgets.HBox(controls), image])
    box.image = image
    return box


def positions_widget(num_positions: int = 64, dim: int = 128) -> widgets.VBox:
    """Sliders for the number of positions and the dimension; the sinusoid views below."""
    positions = widgets.IntSlider(
        value=num_positions,
        min=8,
        max=512,
        step=8,
        description="positions",
        continuous_update=False,
    )
    dims = widgets.IntSlider(
        value=dim, min=8, max=768, step=8, description="dim", continuous_update=False
    )
    view = _dropdown("view", ["matrix", "similarity"], "matrix")

    def draw():
        encoding = sinusoidal_encoding(positions.value, dims.value)
        if view.value == "matrix":
            return plot_sinusoids(encoding=encoding)
        starts = [s for s in (0, 8, 16) if s < positions.value]
        return plot_position_similarity(encoding, starts)

    return _image_box([positions, dims, view], draw)


def embeddings_widget(model, tokenizer, words: list[str]) -> widgets.VBox:
    """A box of comma-separated words and their 2-D PCA picture."""
    box = widgets.Text(
        value=", ".join(words),
        description="words",
        continuous_update=False,
        layout=widgets.Layout(width="80%"),
    )

    def draw():
        chosen = [w.strip() for w in box.value.split(",") if w.strip()]
        return plot_embeddings(model, tokenizer, chosen)

    return _image_box([box], draw)
