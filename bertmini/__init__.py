"""bertmini: BERT built step by step, the same code the course chapters teach."""

from .model import (
    BertConfig,
    BertForPreTraining,
    BertForSequenceClassification,
    BertModel,
    BertOutput,
)
from .tokenizer import Tokenizer

__all__ = [
    "BertConfig",
    "BertModel",
    "BertForPreTraining",
    "BertForSequenceClassification",
    "BertOutput",
    "Tokenizer",
]
__version__ = "0.1.0"
