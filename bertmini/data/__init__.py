"""Data for bertmini: the embedded corpus, pretraining pairs, fine-tuning batches, real data.

* `corpus`: the generated offline corpus, its sentiment task and probe sets.
* `pretraining`: NSP sentence pairs and MLM masking, as batches for `BertForPreTraining`.
* `finetuning`: labelled texts as length-bucketed, dynamically padded batches.
* `real`: WikiText, SST-2 and IMDB through `datasets`; offline, the embedded data instead.
"""

from bertmini.data.corpus import (
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
from bertmini.data.finetuning import (
    ClassificationCollator,
    ClassificationDataset,
    LengthBucketSampler,
    bucketed_batches,
)
from bertmini.data.pretraining import (
    PretrainingCollator,
    PretrainingDataset,
    make_nsp_pairs,
    mask_tokens,
    tokenize_documents,
)
from bertmini.data.real import HubUnavailableError, load_corpus, load_task

__all__ = [
    "ClassificationCollator",
    "ClassificationDataset",
    "EmbeddedCorpus",
    "HELD_OUT_POLARITY_WORDS",
    "HubUnavailableError",
    "LengthBucketSampler",
    "POLARITY_WORDS",
    "PretrainingCollator",
    "PretrainingDataset",
    "ProbeItem",
    "SEEN_POLARITY_WORDS",
    "bucketed_batches",
    "generate_corpus",
    "load_corpus",
    "load_task",
    "make_nsp_pairs",
    "mask_tokens",
    "polarity_words_in",
    "probes",
    "sentiment_task",
    "tokenize_documents",
]
