"""bertmini: BERT built step by step, the same code the course chapters teach."""

from .model import (
    BertConfig,
    BertForPreTraining,
    BertForSequenceClassification,
    BertForTokenClassification,
    BertModel,
    ModelOutput,
)
from .tokenizer import Tokenizer

__all__ = [
    "BertConfig",
    "BertModel",
    "BertForPreTraining",
    "BertForSequenceClassification",
    "BertForTokenClassification",
    "ModelOutput",
    "Tokenizer",
]
__version__ = "0.1.0"
