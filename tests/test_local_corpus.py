"""Pretraining corpora from local files: formats, held-out documents, and one-line refusals."""

import datasets
import pytest

from bertmini.__main__ import main
from bertmini.data.real import CorpusError, hold_out, load_corpus, read_local_corpus

# WikiText raw as its files hold it: headings and paragraphs padded with spaces.
WIKITEXT = "\n".join(
    [
        " = Valkyria Chronicles III = ",
        "",
        " Senjō no Valkyria 3 is a tactical role @-@ playing game . It was released in 2011 . ",
        "",
        " = = Gameplay = = ",
        "",
        " The game sold 1 @,@ 000 copies ! Critics liked it . ",
        " = Tower Building = ",
        "",
        " The building is 3 @.@ 5 stories tall . It is old . ",
    ]
)


def test_text_files_split_at_blank_lines_and_files(tmp_path):
    (tmp_path / "a.txt").write_text("First doc, line one.\nLine two.\n\n\nSecond doc.\n  \nThird.")
    (tmp_path / "b.txt").write_text("Fourth doc starts a new file. Still fourth.\n")
    assert read_local_corpus(str(tmp_path / "*.txt")) == [
        ["First doc, line one.", "Line two."],
        ["Second doc."],
        ["Third."],
        ["Fourth doc starts a new file.", "Still fourth."],  # a long line: split in sentences
    ]


def test_wikitext_headings_are_document_breaks(tmp_path):
    (tmp_path / "wiki.train.raw").write_text(WIKITEXT, encoding="utf-8")
    assert read_local_corpus(str(tmp_path / "wiki.train.raw")) == [
        [
            "Senjō no Valkyria 3 is a tactical role-playing game .",
            "It was released in 2011 .",
            "The game sold 1,000 copies !",
            "Critics liked it .",
        ],
        ["The building is 3.5 stories tall .", "It is old ."],
    ]


def test_a_directory_is_read_recursively_and_with_a_bom(tmp_path):
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    (tmp_path / "one.txt").write_bytes("\ufeffAlpha one.\nAlpha two.".encode())
    (tmp_path / "sub" / "deeper" / "two.txt").write_text("Beta.")
    (tmp_path / "sub" / "notes.md").write_text("not a .txt file")
    assert read_local_corpus(str(tmp_path)) == [["Alpha one.", "Alpha two."], ["Beta."]]


def test_a_saved_dataset_gives_one_document_per_row(tmp_path):
    rows = ["First doc. Two sentences.", "Second doc.\nIts second line.", ""]
    datasets.Dataset.from_dict({"text": rows}).save_to_disk(str(tmp_path / "saved"))
    assert read_local_corpus(str(tmp_path / "saved")) == [
        ["First doc.", "Two sentences."],
        ["Second doc.", "Its second line."],
    ]
    datasets.DatasetDict(
        {"train": datasets.Dataset.from_dict({"text": WIKITEXT.splitlines()})}
    ).save_to_disk(str(tmp_path / "wiki"))
    assert len(read_local_corpus(str(tmp_path / "wiki"))) == 2


def test_local_corpora_hold_out_documents_for_validation(tmp_path):
    documents = [[f"Document {i}."] for i in range(100)]
    (tmp_path / "c.txt").write_text("\n\n".join(d[0] for d in documents))
    train = load_corpus(str(tmp_path / "c.txt"), "train")
    validation = load_corpus(str(tmp_path / "c.txt"), "validation")
    assert len(validation) == 5 and len(train) == 95
    assert sorted(train + validation) == sorted(documents)
    assert not {d[0] for d in train} & {d[0] for d in validation}
    assert load_corpus(str(tmp_path / "c.txt"), "validation") == validation  # deterministic
    assert len(hold_out(documents[:2], "validation", "x")) == 1  # at least one
    with pytest.raises(CorpusError, match="at least 2 are needed"):
        hold_out(documents[:1], "train", "x")
    with pytest.raises(ValueError, match="unknown split 'test'"):
        load_corpus(str(tmp_path / "c.txt"), "test")


def one_line_error(path) -> str:
    with pytest.raises(CorpusError) as error:
        read_local_corpus(str(path))
    message = str(error.value)
    assert "\n" not in message
    assert isinstance(error.value, ValueError)
    return message


def test_bad_files_are_refused_in_one_line(tmp_path):
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("Un café très crème.".encode("latin-1"))
    message = one_line_error(latin1)
    assert str(latin1) in message and "byte offset 6" in message and "0xe9" in message
    assert f"iconv -f latin1 -t utf-8 {latin1}" in message

    utf16 = tmp_path / "utf16.txt"
    utf16.write_text("Hello there.", encoding="utf-16")
    assert "UTF-16LE (byte-order mark at byte offset 0)" in one_line_error(utf16)
    assert "iconv -f utf-16le -t utf-8" in one_line_error(utf16)

    binary = tmp_path / "model.txt"
    binary.write_bytes(b"PK\x03\x04" + bytes(range(256)))
    assert "not text: a NUL byte at byte offset" in one_line_error(binary)

    empty = tmp_path / "empty.txt"
    empty.write_text("")
    assert one_line_error(empty) == f"no text in {empty}: the corpus is empty"
    assert "no text files" in one_line_error(tmp_path / "missing" / "*.txt")
    assert "no text files" in one_line_error(tmp_path / "missing")
    assert "no text files at '/dev/null'" in one_line_error("/dev/null")  # not a regular file


@pytest.mark.parametrize(
    "table",
    [
        "sentence\tlabel\nhide new secretions\t0\na gem of a film\t1\n",  # GLUE SST-2
        '"text","sentiment"\n"great","pos"\n',  # a CSV with a label header
        "a gem of a film\t1\ndull , dull\t0\nfine\t1\n",  # no header, tab + label
    ],
)
def test_a_labelled_table_is_not_a_corpus(tmp_path, table):
    path = tmp_path / "train.tsv"
    path.write_text(table)
    message = one_line_error(path)
    assert "labelled table" in message and f"finetune --train-file {path}" in message


def test_text_that_mentions_labels_is_still_text(tmp_path):
    path = tmp_path / "prose.txt"
    path.write_text("Class, dismissed.\nThe label, in red, said target.\n\nNew doc.\n")
    assert read_local_corpus(str(path)) == [
        ["Class, dismissed.", "The label, in red, said target."],
        ["New doc."],
    ]


@pytest.mark.parametrize(
    "name, content",
    [
        ("latin1.txt", "Un café.".encode("latin-1")),
        ("utf16.txt", "Hello.".encode("utf-16")),
        ("binary.txt", bytes(range(256))),
        ("empty.txt", b""),
        ("train.tsv", b"sentence\tlabel\na gem\t1\n"),
    ],
)
def test_the_cli_refuses_a_bad_corpus_in_one_line(tmp_path, capsys, name, content):
    (tmp_path / name).write_bytes(content)
    argv = ["pretrain", "--corpus", str(tmp_path / name), "--out", str(tmp_path / "run")]
    assert main(argv) == 3  # bad data: exit status 3
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and str(tmp_path / name) in error
    assert "Traceback" not in error and not (tmp_path / "run").exists()


def test_a_saved_labelled_dataset_is_not_a_corpus(tmp_path):
    saved = tmp_path / "sst2"
    datasets.Dataset.from_dict({"text": ["a gem"], "label": [1]}).save_to_disk(str(saved))
    assert "finetune --train-file" in one_line_error(saved)
