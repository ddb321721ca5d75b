"""Data for bertmini: the embedded corpus, pretraining pairs, fine-tuning batches, real data.

* `corpus`: the generated offline corpus, its sentiment task and probe sets.
* `pretraining`: NSP sentence pairs and MLM masking, as batches for `BertForPreTraining`.
* `finetuning`: labelled texts as length-bucketed, dynamically padded batches.
* `real`: WikiText, SST-2 and IMDB through `datasets`; offline, the embedded data instead; and
  labelled local files (CSV, TSV, JSON lines, Parquet, saved datasets).
* `tasks`: a sentence-pair (NLI-style) task and a word-tagging task from the corpus's lexicon.
"""

from .corpus import (
    HELD_OUT_POLARITY_WORDS,
    POLARITY_WORDS,
    SEEN_POLARITY_WORDS,
    EmbeddedCorpus,
    ProbeItem,
    generate_corpus,
    polarity_words_in,
    probes,
    sentiment_task,
)
from .finetuning import (
    ClassificationCollator,
    ClassificationDataset,
    LengthBucketSampler,
    Task,
    TokenClassificationDataset,
    bucketed_batches,
)
from .pretraining import (
    PretrainingCollator,
    PretrainingDataset,
    make_nsp_pairs,
    mask_tokens,
    tokenize_documents,
)
from .real import (
    DataFileError,
    HubUnavailableError,
    load_corpus,
    load_labelled_files,
    load_task,
)
from .tasks import nli_task, tagging_task

__all__ = [
    "ClassificationCollator",
    "ClassificationDataset",
    "DataFileError",
    "EmbeddedCorpus",
    "HELD_OUT_POLARITY_WORDS",
    "HubUnavailableError",
    "LengthBucketSampler",
    "POLARITY_WORDS",
    "PretrainingCollator",
    "PretrainingDataset",
    "ProbeItem",
    "SEEN_POLARITY_WORDS",
    "Task",
    "TokenClassificationDataset",
    "bucketed_batches",
    "generate_corpus",
    "load_corpus",
    "load_labelled_files",
    "load_task",
    "make_nsp_pairs",
    "mask_tokens",
    "nli_task",
    "polarity_words_in",
    "probes",
    "sentiment_task",
    "tagging_task",
    "tokenize_documents",
]
