"""Real corpora and tasks through Hugging Face ``datasets``, with the embedded data as fallback.

Two entry points, each returning plain Python data the rest of bertmini understands:

* ``load_corpus(name, split)`` → documents, each a list of sentence (or line) strings:
  ``"wikitext-2"``, ``"wikitext-103"`` (``Salesforce/wikitext``, raw versions), ``"embedded"``
  (the generated corpus, offline) or local text files ``"path/*.txt"`` (one sentence per
  line, a blank line between documents — the format of Google's BERT pretraining data).
* ``load_task(name)`` → ``{split: [(text, label), ...]}``: ``"sst2"`` (``nyu-mll/glue``),
  ``"imdb"`` (``stanfordnlp/imdb``) or ``"embedded-sentiment"`` (offline).

Downloading and parsing are separate: each ``parse_*`` function takes a ``datasets.Dataset``
with the hub dataset's columns, so the parsing is tested on small local files of the same
schema. Offline (``HF_DATASETS_OFFLINE=1`` / ``HF_HUB_OFFLINE=1``, or no network) a hub name
raises :class:`HubUnavailableError`, which says how to use the embedded data or local files.
"""

from __future__ import annotations

import glob
import os
import re
from typing import Any

from bertmini.data.pretraining import split_sentences

HUB_CORPORA = {
    "wikitext-2": ("Salesforce/wikitext", "wikitext-2-raw-v1"),
    "wikitext-103": ("Salesforce/wikitext", "wikitext-103-raw-v1"),
}
HUB_TASKS = {
    "sst2": ("nyu-mll/glue", "sst2"),
    "imdb": ("stanfordnlp/imdb", None),
}
EMBEDDED_CORPUS = "embedded"
EMBEDDED_TASK = "embedded-sentiment"


class HubUnavailableError(ConnectionError):
    """The Hugging Face hub could not be reached (offline mode or no network)."""


# ---------------------------------------------------------------------------------------------
# Corpora
# ---------------------------------------------------------------------------------------------


def load_corpus(name: str, split: str = "train") -> list[list[str]]:
    """Documents of a corpus, each a list of sentence strings.

    Args:
        name: ``"wikitext-2"``, ``"wikitext-103"``, ``"embedded"``, or a path/glob of local
            ``.txt`` files (one sentence per line, blank lines between documents).
        split: ``"train"``, ``"validation"`` or ``"test"`` (ignored for local files).
    """
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"corpus name must be a non-empty string; {_known_corpora()}")
    if name == EMBEDDED_CORPUS:
        from bertmini.data.corpus import generate_corpus

        _check_split(split, ("train", "validation", "test"), name)
        return [list(doc) for doc in getattr(generate_corpus(), split)]
    if name in HUB_CORPORA:
        path, config = HUB_CORPORA[name]
        _check_split(split, ("train", "validation", "test"), name)
        return parse_wikitext(_load_from_hub(name, path, config, split))
    if _looks_like_path(name):
        files = sorted(glob.glob(os.path.expanduser(name)))
        if not files:
            raise FileNotFoundError(
                f"no files match {name!r}. Give a path or glob such as 'data/*.txt'."
            )
        import datasets

        # One row per file, so a document never runs across two files.
        dataset = datasets.load_dataset(
            "text", data_files=files, split="train", sample_by="document"
        )
        return parse_text_files(dataset)
    raise ValueError(f"unknown corpus {name!r}; {_known_corpora()}")


_TOP_HEADING = re.compile(r"^= [^=].* =$")  # " = Title = "; section headings are " = = ... = = "
_WIKITEXT_JOINS = [(" @-@ ", "-"), (" @,@ ", ","), (" @.@ ", ".")]  # "1 @,@ 000" -> "1,000"


def parse_wikitext(dataset: Any) -> list[list[str]]:
    """WikiText rows (column ``text``, one line each) → articles as lists of sentences.

    A top-level heading `` = Title = `` starts a new article; section headings and empty
    lines are dropped; each paragraph line is split into sentences (WikiText lines are
    whole paragraphs, far longer than the sentences NSP pairs are made of).
    """
    documents: list[list[str]] = []
    current: list[str] = []
    for line in dataset["text"]:
        line = line.strip()
        if not line:
            continue
        if line.startswith("="):
            if _TOP_HEADING.match(line) and current:
                documents.append(current)
                current = []
            continue
        for old, new in _WIKITEXT_JOINS:
            line = line.replace(old, new)
        current.extend(split_sentences(line))
    if current:
        documents.append(current)
    return documents


def parse_text_files(dataset: Any) -> list[list[str]]:
    """Rows of whole files (column ``text``) → documents split at blank lines, one line each."""
    documents = []
    for text in dataset["text"]:
        for block in re.split(r"\n\s*\n", text):
            lines = [line.strip() for line in block.splitlines() if line.strip()]
            if lines:
                documents.append(lines)
    return documents


# ---------------------------------------------------------------------------------------------
# Classification tasks
# ---------------------------------------------------------------------------------------------


def load_task(name: str) -> dict[str, list[tuple[str, int]]]:
    """A text-classification task as ``{split: [(text, label), ...]}``.

    * ``"embedded-sentiment"`` (alias ``"embedded"``): train / validation / test, offline.
    * ``"sst2"``: GLUE SST-2, train / validation. Its test split is unlabelled (label -1) and
      is left out; use validation as the test set, as papers do.
    * ``"imdb"``: train / test (25k reviews each); its ``unsupervised`` split has no labels and
      is left out.
    """
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"task name must be a non-empty string; {_known_tasks()}")
    if name in (EMBEDDED_TASK, EMBEDDED_CORPUS):
        from bertmini.data.corpus import sentiment_task

        return {split: list(rows) for split, rows in sentiment_task().items()}
    if name in HUB_TASKS:
        path, config = HUB_TASKS[name]
        dataset_dict = _load_from_hub(name, path, config, split=None)
        text_column = "sentence" if name == "sst2" else "text"
        splits = {split: parse_labelled(ds, text_column) for split, ds in dataset_dict.items()}
        return {split: rows for split, rows in splits.items() if rows}
    raise ValueError(f"unknown task {name!r}; {_known_tasks()}")


def parse_labelled(dataset: Any, text_column: str) -> list[tuple[str, int]]:
    """Rows with ``text_column`` and ``label`` → ``(text, label)``; unlabelled rows (-1) dropped."""
    missing = {text_column, "label"} - set(dataset.column_names)
    if missing:
        raise ValueError(
            f"dataset has columns {dataset.column_names}; expected {text_column!r} and 'label'."
        )
    return [
        (text, int(label))
        for text, label in zip(dataset[text_column], dataset["label"], strict=True)
        if label is not None and label >= 0
    ]


# ---------------------------------------------------------------------------------------------
# The hub, and what to say when it is out of reach
# ---------------------------------------------------------------------------------------------


def _hub_is_offline() -> bool:
    """True if offline mode is on: in the environment now, or as ``datasets`` read it at import."""
    import datasets

    flags = (os.environ.get("HF_DATASETS_OFFLINE"), os.environ.get("HF_HUB_OFFLINE"))
    return datasets.config.HF_HUB_OFFLINE or any(
        (flag or "").upper() in ("1", "ON", "YES", "TRUE") for flag in flags
    )


def _load_from_hub(name: str, path: str, config: str | None, split: str | None) -> Any:
    import datasets

    if _hub_is_offline():
        raise HubUnavailableError(_offline_message(name, path, "offline mode is on"))
    try:
        return datasets.load_dataset(path, config, split=split)
    except ConnectionError as error:
        raise HubUnavailableError(_offline_message(name, path, str(error))) from error


def _offline_message(name: str, path: str, reason: str) -> str:
    return (
        f"could not reach the Hugging Face hub to load {name!r} ({path}): {reason}. "
        f"Without the hub, use the embedded data: load_corpus({EMBEDDED_CORPUS!r}) / "
        f"load_task({EMBEDDED_TASK!r}), or --corpus {EMBEDDED_CORPUS} on the command line; "
        "or local files: load_corpus('path/*.txt') with one sentence per line and a blank line "
        "between documents. (HF_DATASETS_OFFLINE=1 / HF_HUB_OFFLINE=1 switch the hub off.)"
    )


def _looks_like_path(name: str) -> bool:
    return any(ch in name for ch in "*?[/\\") or name.endswith(".txt") or os.path.exists(name)


def _check_split(split: str, known: tuple[str, ...], name: str) -> None:
    if split not in known:
        raise ValueError(f"unknown split {split!r} for {name!r}; expected one of {list(known)}.")


def _known_corpora() -> str:
    names = [*HUB_CORPORA, EMBEDDED_CORPUS, "'path/*.txt'"]
    return "known corpora: " + ", ".join(names) + "."


def _known_tasks() -> str:
    return "known tasks: " + ", ".join([*HUB_TASKS, EMBEDDED_TASK]) + "."
