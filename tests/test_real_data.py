"""Real corpora and tasks: parsing tested on local files in the hub datasets' schemas, offline."""

import os
import subprocess
import sys

import datasets
import pytest

from bertmini.data import real
from bertmini.data.real import (
    HubUnavailableError,
    load_corpus,
    load_task,
    parse_labelled,
    parse_wikitext,
)

# WikiText raw, as the hub's parquet files hold it: one row per line, headings padded with spaces.
WIKITEXT_ROWS = [
    "",
    " = Valkyria Chronicles III = \n",
    "",
    " Senjō no Valkyria 3 is a tactical role @-@ playing game . It was released in 2011 . \n",
    "",
    " = = Gameplay = = \n",
    "",
    " The game sold 1 @,@ 000 copies in its first week ! Critics liked it . \n",
    " = Tower Building of the Little Rock Arsenal = \n",
    "",
    " The building is 3 @.@ 5 stories tall . \n",
]


def write_and_load(tmp_path, rows, builder, name):
    """Write `rows` (a column dict) to a local file and read it back with `load_dataset`."""
    path = tmp_path / f"{name}.{builder}"
    dataset = datasets.Dataset.from_dict(rows)
    dataset.to_parquet(str(path)) if builder == "parquet" else dataset.to_json(str(path))
    return datasets.load_dataset(builder, data_files=str(path), split="train")


def test_parse_wikitext_from_a_parquet_file(tmp_path):
    dataset = write_and_load(tmp_path, {"text": WIKITEXT_ROWS}, "parquet", "wikitext")
    documents = parse_wikitext(dataset)
    assert documents == [
        [
            "Senjō no Valkyria 3 is a tactical role-playing game .",
            "It was released in 2011 .",
            "The game sold 1,000 copies in its first week !",
            "Critics liked it .",
        ],
        ["The building is 3.5 stories tall ."],
    ]


def test_parse_sst2_and_imdb_schemas(tmp_path):
    sst2_test = {"sentence": ["no label here", "nor here"], "label": [-1, -1], "idx": [0, 1]}
    sst2_train = {"sentence": ["a gem .", "dull , dull , dull"], "label": [1, 0], "idx": [0, 1]}
    assert parse_labelled(write_and_load(tmp_path, sst2_test, "json", "sst2"), "sentence") == []
    assert parse_labelled(datasets.Dataset.from_dict(sst2_train), "sentence") == [
        ("a gem .", 1),
        ("dull , dull , dull", 0),
    ]
    imdb = {"text": ["Loved it.<br />Really.", "Meh.", "unlabelled"], "label": [1, 0, -1]}
    rows = parse_labelled(write_and_load(tmp_path, imdb, "parquet", "imdb"), "text")
    assert rows == [("Loved it.<br />Really.", 1), ("Meh.", 0)]
    with pytest.raises(ValueError, match="expected 'sentence' and 'label'"):
        parse_labelled(datasets.Dataset.from_dict(imdb), "sentence")


@pytest.fixture
def fake_hub(monkeypatch):
    """Answer hub requests with small in-memory datasets of the real schemas."""
    calls = []

    def load_dataset(path, config=None, split=None):
        calls.append((path, config, split))
        if path == "Salesforce/wikitext":
            return datasets.Dataset.from_dict({"text": WIKITEXT_ROWS})
        if path == "nyu-mll/glue":
            return datasets.DatasetDict(
                train=datasets.Dataset.from_dict(
                    {"sentence": ["good ."], "label": [1], "idx": [0]}
                ),
                validation=datasets.Dataset.from_dict(
                    {"sentence": ["bad ."], "label": [0], "idx": [0]}
                ),
                test=datasets.Dataset.from_dict({"sentence": ["?"], "label": [-1], "idx": [0]}),
            )
        return datasets.DatasetDict(
            train=datasets.Dataset.from_dict({"text": ["great film"], "label": [1]}),
            test=datasets.Dataset.from_dict({"text": ["awful film"], "label": [0]}),
            unsupervised=datasets.Dataset.from_dict({"text": ["who knows"], "label": [-1]}),
        )

    monkeypatch.setattr(real, "_hub_is_offline", lambda: False)
    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    return calls


def test_hub_names_map_to_the_right_datasets(fake_hub):
    assert len(load_corpus("wikitext-103", split="validation")) == 2
    assert load_task("sst2") == {"train": [("good .", 1)], "validation": [("bad .", 0)]}
    assert load_task("imdb") == {"train": [("great film", 1)], "test": [("awful film", 0)]}
    assert fake_hub == [
        ("Salesforce/wikitext", "wikitext-103-raw-v1", "validation"),
        ("nyu-mll/glue", "sst2", None),
        ("stanfordnlp/imdb", None, None),
    ]


def test_unreachable_hub_names_the_fallback(monkeypatch):
    def no_network(*args, **kwargs):
        raise ConnectionError("Couldn't reach 'Salesforce/wikitext' on the Hub")

    monkeypatch.setattr(real, "_hub_is_offline", lambda: False)
    monkeypatch.setattr(datasets, "load_dataset", no_network)
    with pytest.raises(HubUnavailableError, match="Couldn't reach") as error:
        load_corpus("wikitext-2")
    assert "load_corpus('embedded')" in str(error.value) and "--corpus embedded" in str(error.value)


def test_offline_environment_fails_fast_with_a_clear_error(monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for load, name in ((load_corpus, "wikitext-2"), (load_task, "sst2"), (load_task, "imdb")):
        with pytest.raises(ConnectionError) as error:
            load(name)
        message = str(error.value)
        assert "could not reach the Hugging Face hub" in message
        assert "embedded" in message and "path/*.txt" in message


def test_offline_datasets_error_is_wrapped_in_a_fresh_process():
    # `datasets` reads HF_DATASETS_OFFLINE / HF_HUB_OFFLINE when it is imported, so set them
    # before import, in a new process. Our own check is switched off there, so the error must
    # come from `datasets` itself and be translated.
    script = (
        "from bertmini.data import real\n"
        "real._hub_is_offline = lambda: False\n"
        "try:\n"
        "    real.load_task('sst2')\n"
        "except real.HubUnavailableError as error:\n"
        "    print('WRAPPED', type(error.__cause__).__name__, error)\n"
    )
    env = {**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "WRAPPED ConnectionError" in result.stdout
    assert "load_task('embedded-sentiment')" in result.stdout


def test_embedded_data_needs_no_hub(monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    documents = load_corpus("embedded", split="validation")
    assert len(documents) > 10 and all(isinstance(s, str) for doc in documents for s in doc)
    comments = load_corpus("embedded-comments", split="validation")  # the course's phase 1
    assert all(line.split()[0] in ("i", "we") for doc in comments for line in doc)
    task = load_task("embedded-sentiment")
    assert set(task) == {"train", "validation", "test"}
    assert {label for _, label in task["train"]} == {0, 1}


def test_unknown_names_list_the_known_ones():
    with pytest.raises(ValueError, match="known corpora: wikitext-2, wikitext-103, embedded, "):
        load_corpus("bookcorpus")
    with pytest.raises(ValueError, match="embedded-comments, embedded-short, 'path"):
        load_corpus("embedded-shrt")
    with pytest.raises(ValueError, match="known tasks: sst2, imdb, embedded-sentiment"):
        load_task("mnli")
    with pytest.raises(ValueError, match="non-empty"):
        load_corpus("")
    with pytest.raises(ValueError, match="unknown split 'dev'"):
        load_corpus("embedded", split="dev")
