"""bertmini: BERT built step by step, the same code the course chapters teach."""

from .model import (
    BertConfig,
    BertForPreTraining,
    BertForSequenceClassification,
    BertModel,
    BertOutput,
)

__all__ = [
    "BertConfig",
    "BertModel",
    "BertForPreTraining",
    "BertForSequenceClassification",
    "BertOutput",
]
__version__ = "0.1.0"
