"""Real corpora and tasks through Hugging Face ``datasets``, with the embedded data as fallback.

Two entry points, each returning plain Python data the rest of bertmini understands:

* ``load_corpus(name, split)`` → documents, each a list of sentence (or line) strings:
  ``"wikitext-2"``, ``"wikitext-103"`` (``Salesforce/wikitext``, raw versions), ``"embedded"``
  (the generated corpus, offline) or local text: a file, a glob, a directory or a saved
  dataset (one sentence per line, a blank line between documents — the format of Google's BERT
  pretraining data); 5% of its documents are held out for validation.
* ``load_task(name)`` → ``{split: [(text, label), ...]}``: ``"sst2"`` (``nyu-mll/glue``),
  ``"imdb"`` (``stanfordnlp/imdb``) or ``"embedded-sentiment"`` (offline).

Downloading and parsing are separate: each ``parse_*`` function takes a ``datasets.Dataset``
with the hub dataset's columns, so the parsing is tested on small local files of the same
schema. Offline (``HF_DATASETS_OFFLINE=1`` / ``HF_HUB_OFFLINE=1``, or no network) a hub name
raises :class:`HubUnavailableError`, which says how to use the embedded data or local files.

Used in chapters 08 (`load_task`) and 10 (`load_corpus`).
"""

from __future__ import annotations

import glob
import os
import re
from typing import Any

from .corpus import EMBEDDED_CORPORA, generate_corpus, sentiment_task
from .finetuning import Task
from .pretraining import split_sentences

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


class CorpusError(ValueError):
    """A local corpus that cannot be read as text; the message says which file and what to do."""


# ---------------------------------------------------------------------------------------------
# Corpora
# ---------------------------------------------------------------------------------------------

VALIDATION_FRACTION = 0.05  # of a local corpus's documents, held out (at least one)


def load_corpus(name: str, split: str = "train") -> list[list[str]]:
    """Documents of a corpus, each a list of sentence strings.

    Args:
        name: ``"wikitext-2"``, ``"wikitext-103"``, ``"embedded"`` (or one of its named mixes,
            ``corpus.EMBEDDED_CORPORA``, e.g. ``"embedded-short"``), or local text: a file, a
            glob, a directory (every ``*.txt`` below it), or a dataset saved with
            ``Dataset.save_to_disk`` (one document per row of its ``text`` column). See
            :func:`read_local_corpus` for the format.
        split: ``"train"``, ``"validation"`` or ``"test"``. A local corpus has train and
            validation: a deterministic 5% of its documents (at least one) is held out, so
            validation never scores on training text.
    """
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"corpus name must be a non-empty string; {_known_corpora()}")
    if name in EMBEDDED_CORPORA:
        _check_split(split, ("train", "validation", "test"), name)
        return [list(doc) for doc in getattr(generate_corpus(**EMBEDDED_CORPORA[name]), split)]
    if name in HUB_CORPORA:
        path, config = HUB_CORPORA[name]
        _check_split(split, ("train", "validation", "test"), name)
        return parse_wikitext(_load_from_hub(name, path, config, split))
    if _looks_like_path(name):
        _check_split(split, ("train", "validation"), f"local corpus {name}")
        return hold_out(read_local_corpus(name), split, name)
    raise ValueError(f"unknown corpus {name!r}; {_known_corpora()}")


def hold_out(documents: list[list[str]], split: str, name: str) -> list[list[str]]:
    """The ``split`` of a local corpus: validation is every 20th document (evenly spread, at
    least one), train the rest."""
    if len(documents) < 2:
        raise CorpusError(
            f"corpus {name} has {len(documents)} document(s); at least 2 are needed to hold one "
            "out for validation (separate documents by a blank line, or give one file each)"
        )
    num_held_out = max(1, round(VALIDATION_FRACTION * len(documents)))
    stride = len(documents) / num_held_out
    held_out = {int(stride * (k + 0.5)) for k in range(num_held_out)}
    keep = (lambda i: i in held_out) if split == "validation" else (lambda i: i not in held_out)
    return [doc for i, doc in enumerate(documents) if keep(i)]


def read_local_corpus(name: str) -> list[list[str]]:
    """Documents of local text: a file, a glob, a directory of ``*.txt`` or a saved dataset.

    Text files are UTF-8 (a byte-order mark is fine), one sentence (or paragraph) per line;
    a blank line ends a document, and so does the end of a file. WikiText's `` = Title = ``
    lines start a new document. Anything else (latin-1, UTF-16, binary, a labelled table) is
    refused with a :class:`CorpusError` naming the file and what to do.
    """
    path = os.path.expanduser(name)
    if os.path.isdir(path) and _is_saved_dataset(path):
        return _read_saved_dataset(path)
    if os.path.isdir(path):
        files = sorted(glob.glob(os.path.join(path, "**", "*.txt"), recursive=True))
    else:
        files = sorted(f for f in glob.glob(path) if os.path.isfile(f))
    if not files:
        raise CorpusError(
            f"no text files at {name!r}: give a .txt file, a glob such as 'data/*.txt', a "
            "directory holding .txt files, or a directory written by Dataset.save_to_disk"
        )
    documents = [doc for file in files for doc in text_to_documents(read_text_file(file))]
    if not documents:
        where = files[0] if len(files) == 1 else f"{len(files)} files at {name!r}"
        raise CorpusError(f"no text in {where}: the corpus is empty")
    return documents


_UTF16_32_BOMS = {
    b"\xff\xfe\x00\x00": "utf-32le",
    b"\x00\x00\xfe\xff": "utf-32be",
    b"\xff\xfe": "utf-16le",
    b"\xfe\xff": "utf-16be",
}


def read_text_file(file: str) -> str:
    """A file's text if it is UTF-8 (BOM allowed) and not a labelled table; else CorpusError."""
    with open(file, "rb") as handle:
        data = handle.read()
    for bom, encoding in _UTF16_32_BOMS.items():
        if data.startswith(bom):
            raise CorpusError(
                f"{file} is {encoding.upper()} (byte-order mark at byte offset 0), not UTF-8: "
                f"convert it with `iconv -f {encoding} -t utf-8 {file} > {file}.utf8.txt`"
            )
    if (nul := data.find(b"\x00")) >= 0:
        raise CorpusError(
            f"{file} is not text: a NUL byte at byte offset {nul} (a binary file, or UTF-16 "
            f"without a byte-order mark: `iconv -f utf-16 -t utf-8 {file} > {file}.utf8.txt`)"
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        bad = data[error.start : error.start + 1].hex()
        raise CorpusError(
            f"{file} is not UTF-8: byte 0x{bad} at byte offset {error.start}. If it is latin-1 "
            f"(or Windows-1252), convert it with `iconv -f latin1 -t utf-8 {file} > "
            f"{file}.utf8.txt`"
        ) from None
    _refuse_labelled_table(text.split("\n", 20)[:20], file)
    return text


_LABEL_HEADERS = {"label", "labels", "sentiment", "class", "target", "category", "y"}
_TRAILING_LABEL = re.compile(r"\t-?\d+\s*$")  # "a fine film\t1"


def _refuse_labelled_table(first_lines: list[str], file: str) -> None:
    """Refuse a TSV/CSV of labelled examples: as a corpus its labels would become text."""
    lines = [line for line in first_lines if line.strip()]
    if not lines:
        return
    cells = [cell.strip().strip('"').lower() for cell in re.split(r"[\t,]", lines[0])]
    # A header row is two or more names ("sentence\tlabel"), not a sentence with a comma.
    is_header = len(cells) > 1 and all(re.fullmatch(r"[a-z_][\w-]*", cell) for cell in cells)
    labelled_rows = sum(bool(_TRAILING_LABEL.search(line)) for line in lines)
    if is_header and set(cells) & _LABEL_HEADERS or labelled_rows >= max(2, len(lines) // 2):
        raise CorpusError(
            f"{file} looks like a labelled table (first line {lines[0].strip()[:60]!r}), not "
            f"running text: fine-tune on it with `finetune --train-file {file}`; pretraining "
            "takes plain text"
        )


_TOP_HEADING = re.compile(r"^= [^=].* =$")  # " = Title = "; section headings are " = = ... = = "
_WIKITEXT_JOINS = [(" @-@ ", "-"), (" @,@ ", ","), (" @.@ ", ".")]  # "1 @,@ 000" -> "1,000"


def text_to_documents(text: str) -> list[list[str]]:
    """One file's text -> documents of sentences: WikiText-style text (with `` = Title = ``
    lines) by its headings, anything else at blank lines; long lines are split into
    sentences (a line may be a whole paragraph)."""
    lines = text.splitlines()
    if any(_TOP_HEADING.match(line.strip()) for line in lines):
        return parse_wikitext({"text": lines})
    documents = []
    for block in re.split(r"\n\s*\n", text):
        sentences = [s for line in block.splitlines() for s in split_sentences(line)]
        if sentences:
            documents.append(sentences)
    return documents


def _is_saved_dataset(path: str) -> bool:
    names = ("dataset_info.json", "state.json", "dataset_dict.json")
    return any(os.path.isfile(os.path.join(path, n)) for n in names)


def _read_saved_dataset(path: str) -> list[list[str]]:
    """A ``save_to_disk`` directory -> documents: one per row of its ``text`` column (a
    DatasetDict: its train split), or WikiText's one line per row, by its headings."""
    import datasets

    dataset = datasets.load_from_disk(path)
    if isinstance(dataset, datasets.DatasetDict):
        if "train" not in dataset:
            raise CorpusError(f"{path} holds splits {list(dataset)}; a corpus needs 'train'")
        dataset = dataset["train"]
    if "text" not in dataset.column_names:
        hint = " It has a label column: fine-tune on it with `finetune --train-file`." * bool(
            _LABEL_HEADERS & set(dataset.column_names)
        )
        raise CorpusError(
            f"{path} has columns {dataset.column_names}; a corpus needs a 'text' column.{hint}"
        )
    if _LABEL_HEADERS & set(dataset.column_names):
        raise CorpusError(
            f"{path} has a label column ({dataset.column_names}): that is a labelled task; "
            f"fine-tune on it with `finetune --train-file {path}`"
        )
    rows = [row or "" for row in dataset["text"]]
    if any(_TOP_HEADING.match(row.strip()) for row in rows):
        return parse_wikitext({"text": rows})
    return [doc for row in rows for doc in text_to_documents(row)]


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
    names = [*HUB_CORPORA, *EMBEDDED_CORPORA, "'path/*.txt'"]
    return "known corpora: " + ", ".join(names) + "."


def _known_tasks() -> str:
    return "known tasks: " + ", ".join([*HUB_TASKS, EMBEDDED_TASK]) + "."


# ---------------------------------------------------------------------------------------------
# Labelled files: CSV, TSV, JSON lines, Parquet, or a saved dataset
# ---------------------------------------------------------------------------------------------

FILE_FORMATS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".json": "json",
    ".jsonl": "json",
    ".parquet": "parquet",
}
# The columns Hugging Face's run_glue.py guesses: a pair first, then a single text.
TEXT_COLUMNS = (("sentence1", "sentence2"), ("sentence", None), ("text", None))


class DataFileError(ValueError):
    """A data file that cannot be read as labelled text; the message says what to do."""


def read_table(path: str | os.PathLike) -> Any:
    """A local file (CSV, TSV, JSON/JSONL, Parquet) or `save_to_disk` folder as a `Dataset`.

    Text files must be UTF-8 (a BOM is fine); an empty, binary or header-only file is refused.
    Every problem raises :class:`DataFileError` (or FileNotFoundError) with a one-line message.
    """
    import datasets

    path = os.path.expanduser(os.fspath(path))
    if os.path.isdir(path):
        try:
            table = datasets.load_from_disk(path)
        except FileNotFoundError as error:
            raise DataFileError(
                f"{path} is a folder but not one written by Dataset.save_to_disk: give a file"
            ) from error
        if isinstance(table, datasets.DatasetDict):
            raise DataFileError(
                f"{path} holds splits {list(table)}: give one of them, e.g. {path}/train"
            )
    else:
        table = _read_file(path)
    if table.num_rows == 0:
        raise DataFileError(f"{path} has no rows (a header alone is not data)")
    return table


def _read_file(path: str) -> Any:
    import datasets

    if not os.path.isfile(path):
        raise FileNotFoundError(f"no file at {path}")
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in FILE_FORMATS:
        raise DataFileError(
            f"{path}: unknown format {suffix or '(no suffix)'}; use .csv, .tsv, .json, "
            ".jsonl, .parquet or a Dataset.save_to_disk folder"
        )
    if os.path.getsize(path) == 0:
        raise DataFileError(f"{path} is empty")
    if FILE_FORMATS[suffix] != "parquet":
        _check_text_file(path, has_header=FILE_FORMATS[suffix] == "csv")
    options = {"delimiter": "\t", "quoting": 3} if suffix == ".tsv" else {}  # GLUE: no quoting
    if suffix == ".csv" or suffix == ".tsv":
        options["encoding"] = "utf-8-sig"  # a BOM is not part of the first column's name
    bars_were_on = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()  # a small local file needs no "Generating split" bar
    try:
        return datasets.load_dataset(
            FILE_FORMATS[suffix], data_files=path, split="train", **options
        )
    except Exception as error:  # datasets wraps parser errors deep in its own: say it simply
        cause = error
        while cause.__cause__ is not None or cause.__context__ is not None:
            cause = cause.__cause__ or cause.__context__
        reason = " ".join(str(cause).split())[:200]
        raise DataFileError(
            f"{path} could not be read as {FILE_FORMATS[suffix].upper()} "
            f"({type(cause).__name__}: {reason}); mixed types in one column "
            '(e.g. labels 1 and "pos") are a common cause'
        ) from None
    finally:
        if bars_were_on:
            datasets.enable_progress_bars()


def _check_text_file(path: str, has_header: bool) -> None:
    """Refuse binary and non-UTF-8 files, and a CSV/TSV that is only its header."""
    with open(path, "rb") as f:
        data = f.read()
    if b"\x00" in data[:65536]:
        raise DataFileError(f"{path} looks binary (it holds NUL bytes): give a text file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise DataFileError(
            f"{path} is not UTF-8 (byte 0x{data[error.start]:02x} at offset {error.start}); "
            f"convert it, e.g. iconv -f latin1 -t utf-8 {path} > utf8-{os.path.basename(path)}"
        ) from None
    if has_header and sum(1 for line in text.splitlines() if line.strip()) < 2:
        raise DataFileError(f"{path} has no rows (a header alone is not data)")


def text_columns(
    column_names: list[str], text_column: str | None, text_pair_column: str | None, source: str
) -> tuple[str, str | None]:
    """(text column, pair column or None): as given, else guessed as run_glue.py does."""
    if text_column is None:
        for first, second in TEXT_COLUMNS:
            if first in column_names and (second is None or second in column_names):
                text_column, text_pair_column = first, text_pair_column or second
                break
        else:
            raise DataFileError(
                f"{source} has columns {column_names}: none of sentence, sentence1+sentence2 "
                "or text; name the text with --text-column (and --text-pair-column)"
            )
    for option, column in (
        ("--text-column", text_column),
        ("--text-pair-column", text_pair_column),
    ):
        if column is not None and column not in column_names:
            raise DataFileError(
                f"{source} has no column {column!r} ({option}); it has {column_names}"
            )
    return text_column, text_pair_column


def read_examples(
    table: Any,
    source: str,
    text_column: str | None = None,
    text_pair_column: str | None = None,
    label_column: str | None = "label",
) -> dict[str, list]:
    """Columns ``text``, maybe ``text_pair``, and ``label`` (raw values, if `label_column`)."""
    text_column, text_pair_column = text_columns(
        table.column_names, text_column, text_pair_column, source
    )
    columns = {"text": text_column, "text_pair": text_pair_column, "label": label_column}
    if label_column is not None and label_column not in table.column_names:
        raise DataFileError(
            f"{source} has no label column {label_column!r}; it has {table.column_names}: "
            "name it with --label-column"
        )
    examples = {}
    for key, column in columns.items():
        if column is None:
            continue
        values = table[column]
        for row, value in enumerate(values, 1):
            blank = value is None or (key != "label" and not str(value).strip())
            if blank or (key == "label" and value == -1):
                what = (
                    "no label (unlabelled rows cannot be trained on)"
                    if key == "label"
                    else "no text"
                )
                raise DataFileError(f"{source}: row {row} has {what} in column {column!r}")
        examples[key] = [str(v) for v in values] if key != "label" else list(values)
    if label_column is not None:
        feature = table.features[label_column]
        names = getattr(feature, "names", None)  # a ClassLabel keeps its names
        examples["label"] = [names[v] for v in examples["label"]] if names else examples["label"]
    return examples


def label_names_of(labels: list, source: str) -> list[str]:
    """The classes in `labels`, sorted (numbers as numbers), as strings: their ids' names."""
    kinds = {type(label) for label in labels}
    if len(kinds) > 1 or not kinds <= {int, str, bool}:
        raise DataFileError(
            f"{source}: mixed types in one column: labels must be all integers or all strings, "
            f"got {sorted(kind.__name__ for kind in kinds)}"
        )
    return [str(label) for label in sorted(set(labels))]


def load_labelled_files(
    train_file: str,
    validation_file: str | None = None,
    test_file: str | None = None,
    text_column: str | None = None,
    text_pair_column: str | None = None,
    label_column: str = "label",
):
    """A `Task` from local files, one per split; label names come from the training file."""
    files = {"train": train_file, "validation": validation_file, "test": test_file}
    files = {split: os.fspath(path) for split, path in files.items() if path is not None}
    tables = {split: read_table(path) for split, path in files.items()}
    record = {f"{split}_file": os.path.abspath(path) for split, path in files.items()}
    columns = (text_column, text_pair_column, label_column)
    return _task_from_tables("files", tables, files, record, columns)


def load_hub_task(
    dataset: str,
    config: str | None = None,
    text_column: str | None = None,
    text_pair_column: str | None = None,
    label_column: str = "label",
):
    """A `Task` from a hub dataset (online only); unlabelled splits (GLUE's test) are left out."""
    if _hub_is_offline():
        raise HubUnavailableError(
            f"could not load {dataset!r} from the Hugging Face hub: offline mode is on. Download "
            "its files elsewhere and pass them with --train-file/--validation-file, or use "
            f"--task {EMBEDDED_TASK}. (HF_DATASETS_OFFLINE=1 / HF_HUB_OFFLINE=1 switch it off.)"
        )
    splits = _load_from_hub(dataset, dataset, config, split=None)
    tables = {
        name: table
        for name, table in splits.items()
        if label_column in table.column_names and -1 not in set(table[label_column][:100])
    }
    where = {split: f"{dataset} ({split})" for split in tables}
    record = {"dataset": dataset, "dataset_config": config}
    return _task_from_tables(
        dataset, tables, where, record, (text_column, text_pair_column, label_column)
    )


def _task_from_tables(name: str, tables: dict, where: dict, record: dict, columns: tuple):
    """Tables per split -> a Task with label ids numbered by the training split's classes."""
    if "train" not in tables:
        raise DataFileError(f"{name} has no training split (got {list(tables)})")
    examples = {
        split: read_examples(table, where[split], *columns) for split, table in tables.items()
    }
    label_names = label_names_of(examples["train"]["label"], where["train"])
    label2id = {label: i for i, label in enumerate(label_names)}
    for split, split_examples in examples.items():
        raw = split_examples["label"]
        label_names_of(raw, where[split])  # one type per file
        unknown = sorted({str(v) for v in raw} - set(label2id))
        if unknown:
            raise DataFileError(
                f"{where[split]} has labels {unknown[:5]} that the training data never has "
                f"(it has {label_names})"
            )
        split_examples["label"] = [label2id[str(v)] for v in raw]
    names = ("text_column", "text_pair_column", "label_column")
    record = {**record, **dict(zip(names, columns, strict=True))}
    return Task(name, examples, label_names, source=record)
