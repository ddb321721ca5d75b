"""BERT: a stack of Transformer encoder layers, pretrained to fill in masked words.

Taught in chapter 05, chapters/05_assembling_bert.ipynb (the heads' losses: chapters 07 and 08).

    input_ids, segment ids, positions
        -> embeddings: word + segment + position, LayerNorm, dropout     (batch, seq, hidden)
        -> encoder: num_hidden_layers x EncoderLayer                      (batch, seq, hidden)
        -> heads:
             MLM  at masked positions: dense, GELU, LayerNorm, then a decoder that shares its
                  weights with the word embeddings                       (masked, vocab)
             NSP  on [CLS]: pooler tanh(W h_cls), then a linear layer     (batch, 2)
             classification on [CLS]: pooler, dropout, linear             (batch, num_labels)

The MLM head runs only where a label is given (labels != -100): the loss is the same as running
it everywhere and discarding the rest, at a fraction of the cost (with BERT's 30,522-token
vocabulary, the projection is most of a small BERT's work). `training_flops_per_step` counts
that work. The same models with a bidirectional LSTM in place of the Transformer layers are in
lstm.py, for comparing the two encoders on one task.

Parameter and config names follow Hugging Face's `config.json`, so real checkpoints load as they
are (see hub.py for the weight names).
"""

import difflib
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from . import hub
from .attention import padding_mask
from .guard import refuse_if_checked
from .positional import SinusoidalPositions, learned_positions
from .transformer import EncoderLayer

IGNORE_INDEX = -100  # label value of positions that are not predicted (PyTorch's default)


@dataclass
class BertConfig:
    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    initializer_range: float = 0.02
    pad_token_id: int = 0
    num_labels: int = 2
    pre_layer_norm: bool = False  # BERT is post-LN
    position_embedding: str = "learned"  # or "sinusoidal"
    # Label names of a classifier, as Hugging Face keeps them (its pipelines read them).
    id2label: dict[int, str] | None = None
    label2id: dict[str, int] | None = None

    # Google's compact BERTs (Turc et al. 2019) and the two of the BERT paper:
    # (layers, hidden); heads = hidden / 64 and FFN = 4 x hidden.
    PRESETS = {
        "tiny": (2, 128),
        "mini": (4, 256),
        "small": (4, 512),
        "medium": (8, 512),
        "base": (12, 768),
        "large": (24, 1024),
    }

    def __post_init__(self):
        for name in (
            "vocab_size",
            "hidden_size",
            "num_hidden_layers",
            "num_attention_heads",
            "intermediate_size",
            "max_position_embeddings",
            "type_vocab_size",
            "num_labels",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0 <= value < 1:
                raise ValueError(f"{name} must be a number in [0, 1), got {value!r}")
        for name in ("layer_norm_eps", "initializer_range"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"{name} must be a number > 0, got {value!r}")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must be a multiple of num_attention_heads "
                f"({self.num_attention_heads})"
            )
        if self.hidden_act not in ("gelu", "gelu_python"):
            raise ValueError(f"hidden_act {self.hidden_act!r} is not supported: BERT uses 'gelu'")
        if self.position_embedding not in ("learned", "sinusoidal"):
            raise ValueError(
                "position_embedding must be 'learned' or 'sinusoidal', "
                f"got {self.position_embedding!r}"
            )
        if self.id2label is not None:  # JSON keys are strings: {"0": "negative"}
            self.id2label = {int(i): str(label) for i, label in self.id2label.items()}
            if sorted(self.id2label) != list(range(self.num_labels)):
                # num_labels given over a checkpoint's names (a new head): they no longer apply.
                self.id2label = None
        self.label2id = None if self.id2label is None else {v: k for k, v in self.id2label.items()}

    @classmethod
    def preset(cls, name: str, **overrides) -> "BertConfig":
        """A named shape, e.g. `BertConfig.preset("mini", vocab_size=4000)`."""
        if name not in cls.PRESETS:
            raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(cls.PRESETS)}")
        layers, hidden = cls.PRESETS[name]
        shape = dict(
            num_hidden_layers=layers,
            hidden_size=hidden,
            num_attention_heads=hidden // 64,
            intermediate_size=4 * hidden,
        )
        return cls(**{**shape, **overrides})

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "BertConfig":
        """From a dict such as Hugging Face's config.json; keys we do not use are ignored."""
        if values.get("position_embedding_type", "absolute") != "absolute":
            raise ValueError("only absolute position embeddings are supported")
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in values.items() if k in known}
        if values.get("id2label") and "num_labels" not in values:  # HF writes only id2label
            values["num_labels"] = len(values["id2label"])
        return cls(**values)


@dataclass
class ModelOutput:
    """What every model returns; fields a model does not compute are None."""

    last_hidden_state: torch.Tensor  # (batch, seq, hidden)
    pooler_output: torch.Tensor | None = None  # (batch, hidden)
    hidden_states: tuple[torch.Tensor, ...] | None = None  # embeddings + one per layer
    attentions: tuple[torch.Tensor, ...] | None = None  # one per layer, (batch, heads, seq, seq)
    loss: torch.Tensor | None = None
    mlm_loss: torch.Tensor | None = None
    nsp_loss: torch.Tensor | None = None
    mlm_logits: torch.Tensor | None = (
        None  # (labelled, vocab) with labels, else (batch, seq, vocab)
    )
    nsp_logits: torch.Tensor | None = None  # (batch, 2): 0 = IsNext, 1 = NotNext
    logits: torch.Tensor | None = None  # (batch, num_labels), or (batch, seq, num_labels)


class Embeddings(nn.Module):
    """Token + segment + position embeddings, then LayerNorm and dropout."""

    def __init__(self, config: BertConfig):
        super().__init__()
        hidden = config.hidden_size
        self.word = nn.Embedding(config.vocab_size, hidden, padding_idx=config.pad_token_id)
        if config.position_embedding == "learned":
            self.position = learned_positions(config.max_position_embeddings, hidden)
        else:
            self.position = SinusoidalPositions(config.max_position_embeddings, hidden)
        self.segment = nn.Embedding(config.type_vocab_size, hidden)
        self.norm = nn.LayerNorm(hidden, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, input_ids: torch.Tensor, segment_ids: torch.Tensor) -> torch.Tensor:
        """input_ids, segment_ids: (batch, seq) -> (batch, seq, hidden)."""
        refuse_if_checked("Embeddings")  # see bertmini.guard
        positions = torch.arange(input_ids.size(1), device=input_ids.device)  # (seq,)
        x = self.word(input_ids) + self.segment(segment_ids) + self.position(positions)
        return self.dropout(self.norm(x))


class PreTrainedModel(nn.Module):
    """Loading, saving and checking inputs, shared by every BERT model below."""

    config: BertConfig
    base_prefix = ""  # where BertModel sits inside this model, in checkpoint names

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def init_weights(self) -> None:
        """BERT's initialisation: normal(0, 0.02) weights, zero biases, LayerNorm at identity."""
        std = self.config.initializer_range
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, std=std)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)
            if isinstance(module, nn.Embedding) and module.padding_idx is not None:
                nn.init.zeros_(module.weight[module.padding_idx])
            if isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    @classmethod
    def from_pretrained(cls, name_or_dir: str | Path, **config_overrides):
        """Load a Hugging Face-format checkpoint (a local directory, or a hub name when online).

        Heads that the checkpoint lacks start from random weights, with a warning; what was
        missing or left over is kept in `model.loading_info`.
        """
        known = {f.name for f in fields(BertConfig)}
        if unknown := sorted(set(config_overrides) - known):
            hints = [difflib.get_close_matches(name, known, n=1) for name in unknown]
            raise TypeError(
                f"from_pretrained() got unknown config options {unknown}"
                + "".join(f" (did you mean {hint[0]!r}?)" for hint in hints if hint)
            )
        directory = hub.resolve(name_or_dir)
        config_dict, hf_weights = hub.read_checkpoint(directory)
        try:
            config = BertConfig.from_dict({**config_dict, **config_overrides})
        except (TypeError, ValueError) as error:
            raise hub.CheckpointError(f"{directory / 'config.json'}: {error}") from None
        model = cls(config)
        weights = hub.bertmini_names(hf_weights, model.base_prefix)
        model.load_checked_state_dict(weights, source=str(directory))
        return model

    def load_checked_state_dict(self, weights: dict[str, torch.Tensor], source: str = "") -> None:
        """Load weights after checking every shape against this model's config (hub.py)."""
        hub.load_checked(self, weights, source)

    def _is_tied(self, name: str) -> bool:
        return False

    def save_pretrained(self, directory: str | Path) -> None:
        """Write config.json + model.safetensors in Hugging Face's format (atomically)."""
        hub.write_model(self, Path(directory))

    def _check_inputs(self, input_ids, token_type_ids, attention_mask) -> None:
        """Clear errors for the mistakes that otherwise surface deep inside torch."""
        config = self.config
        if not isinstance(input_ids, torch.Tensor):
            raise TypeError(f"input_ids must be a torch.Tensor, got {type(input_ids).__name__}")
        if input_ids.dim() != 2:
            hint = " (add a batch dimension: input_ids[None])" if input_ids.dim() == 1 else ""
            raise ValueError(
                f"input_ids must have shape (batch, seq), got {tuple(input_ids.shape)}{hint}"
            )
        if input_ids.numel() == 0:
            raise ValueError(
                f"empty batch: input_ids has shape {tuple(input_ids.shape)}; give at least one "
                "example of at least one token"
            )
        if input_ids.dtype not in (torch.int64, torch.int32):
            raise TypeError(f"input_ids must be int64 token ids, got {input_ids.dtype}")
        if input_ids.size(1) > config.max_position_embeddings:
            raise ValueError(
                f"sequence length {input_ids.size(1)} exceeds max_position_embeddings "
                f"({config.max_position_embeddings}); truncate the inputs"
            )
        for name, tensor in (
            ("token_type_ids", token_type_ids),
            ("attention_mask", attention_mask),
        ):
            if tensor is not None and tensor.shape != input_ids.shape:
                raise ValueError(
                    f"{name} must have the shape of input_ids {tuple(input_ids.shape)}, "
                    f"got {tuple(tensor.shape)}"
                )
        # Value checks read the tensor back, a host sync: on accelerators only outside training.
        if torch.compiler.is_compiling() or (input_ids.device.type != "cpu" and self.training):
            return
        if input_ids.numel() and (input_ids.min() < 0 or input_ids.max() >= config.vocab_size):
            bad = input_ids[(input_ids < 0) | (input_ids >= config.vocab_size)][0].item()
            raise ValueError(
                f"token id {bad} is outside the vocabulary [0, {config.vocab_size}); the "
                "tokenizer and the model disagree on vocab_size"
            )
        if (
            token_type_ids is not None
            and token_type_ids.numel()
            and (token_type_ids.min() < 0 or token_type_ids.max() >= config.type_vocab_size)
        ):
            raise ValueError(
                f"token_type_ids must be in [0, {config.type_vocab_size}), "
                f"got max {token_type_ids.max().item()}"
            )


class BertModel(PreTrainedModel):
    """The encoder: ids -> contextual vectors (batch, seq, hidden) and the pooled [CLS] vector."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.config = config
        self.embeddings = Embeddings(config)
        self.build_encoder(config)
        self.pooler = nn.Linear(config.hidden_size, config.hidden_size)
        self.init_weights()

    def build_encoder(self, config: BertConfig) -> None:
        """The stack of Transformer layers (lstm.BiLSTMModel builds its LSTM here instead)."""
        self.layers = nn.ModuleList(
            EncoderLayer(
                config.hidden_size,
                config.num_attention_heads,
                config.intermediate_size,
                config.hidden_dropout_prob,
                config.attention_probs_dropout_prob,
                config.layer_norm_eps,
                config.pre_layer_norm,
            )
            for _ in range(config.num_hidden_layers)
        )
        # Pre-LN leaves the last residual sum unnormalised.
        self.final_norm = (
            nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
            if config.pre_layer_norm
            else None
        )

    def encode(
        self, x: torch.Tensor, attention_mask: torch.Tensor | None, output_attentions: bool
    ) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor | None]]:
        """Embeddings (batch, seq, hidden) -> (output (batch, seq, hidden), [the input and each
        layer's output], [each layer's attention weights, or None when not asked])."""
        mask = None if attention_mask is None else padding_mask(attention_mask)
        hidden_states, attentions = [x], []
        for layer in self.layers:
            x, weights = layer(x, mask, output_attentions)
            hidden_states.append(x)
            attentions.append(weights)
        if self.final_norm is not None:
            x = self.final_norm(x)
        return x, hidden_states, attentions

    def forward(
        self,
        input_ids: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
    ) -> ModelOutput:
        """input_ids, token_type_ids, attention_mask: (batch, seq); mask 1 = real, 0 = padding."""
        self._check_inputs(input_ids, token_type_ids, attention_mask)
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        x = self.embeddings(input_ids, token_type_ids)  # (batch, seq, hidden)
        x, hidden_states, attentions = self.encode(x, attention_mask, output_attentions)
        pooled = torch.tanh(self.pooler(x[:, 0]))  # (batch, hidden), from [CLS]
        return ModelOutput(
            last_hidden_state=x,
            pooler_output=pooled,
            hidden_states=tuple(hidden_states) if output_hidden_states else None,
            attentions=tuple(attentions) if output_attentions and attentions else None,
        )


class MaskedLMHead(nn.Module):
    """hidden -> vocabulary logits: dense, GELU, LayerNorm, then the word embeddings transposed."""

    def __init__(self, config: BertConfig, word_embeddings: nn.Embedding):
        super().__init__()
        self.transform = nn.Linear(config.hidden_size, config.hidden_size)
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.decoder_weight = word_embeddings.weight  # tied: (vocab, hidden), one tensor, two uses
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """(..., hidden) -> (..., vocab)."""
        refuse_if_checked("MaskedLMHead")  # see bertmini.guard
        h = self.norm(F.gelu(self.transform(hidden)))
        return F.linear(h, self.decoder_weight, self.bias)


class BertForPreTraining(PreTrainedModel):
    """BERT with its two pretraining heads: masked language model and next-sentence prediction."""

    base_prefix = "bert."
    base_model_class = BertModel  # lstm.py's models put a BiLSTM here

    def __init__(self, config: BertConfig):
        refuse_if_checked("BertForPreTraining")  # see bertmini.guard
        super().__init__()
        self.config = config
        self.bert = self.base_model_class(config)
        self.mlm = MaskedLMHead(config, self.bert.embeddings.word)
        self.nsp = nn.Linear(config.hidden_size, 2)
        self.init_weights()

    def _is_tied(self, name: str) -> bool:
        return name == "mlm.decoder_weight"

    def forward(
        self,
        input_ids: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        next_sentence_label: torch.Tensor | None = None,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
    ) -> ModelOutput:
        """labels: (batch, seq), the original id where a token is to be predicted, else -100.
        next_sentence_label: (batch,), 0 = B follows A, 1 = B is random.

        With labels, mlm_logits is (labelled, vocab): the MLM head runs only at the labelled
        positions, in row-major order of the labels. Without, (batch, seq, vocab).
        """
        if labels is not None and labels.shape != input_ids.shape:
            raise ValueError(
                f"labels must have the shape of input_ids {tuple(input_ids.shape)}, "
                f"got {tuple(labels.shape)}"
            )
        out = self.bert(
            input_ids, token_type_ids, attention_mask, output_attentions, output_hidden_states
        )
        out.nsp_logits = self.nsp(out.pooler_output)  # (batch, 2)
        if labels is None:
            out.mlm_logits = self.mlm(out.last_hidden_state)  # (batch, seq, vocab)
            return out
        # The head only where a label is: (labelled, hidden) -> (labelled, vocab). (Boolean
        # indexing has a data-dependent size; device.compile_model keeps it in one graph.)
        labelled = labels != IGNORE_INDEX
        out.mlm_logits = self.mlm(out.last_hidden_state[labelled])
        # A sum over the labelled tokens divided by their count (at least 1): a batch in which
        # no token was masked has an MLM loss of 0, not 0/0 = NaN.
        mlm_loss_sum = F.cross_entropy(out.mlm_logits.float(), labels[labelled], reduction="sum")
        out.mlm_loss = mlm_loss_sum / labelled.sum().clamp(min=1)
        out.loss = out.mlm_loss
        if next_sentence_label is not None:
            out.nsp_loss = F.cross_entropy(out.nsp_logits.float(), next_sentence_label.view(-1))
            out.loss = out.loss + out.nsp_loss
        return out


class _Classifier(PreTrainedModel):
    """BERT, dropout and a linear classifier on `features(out)`: the two classifiers below."""

    base_prefix = "bert."
    base_model_class = BertModel  # lstm.py's models put a BiLSTM here

    def __init__(self, config: BertConfig):
        super().__init__()
        self.config = config
        self.bert = self.base_model_class(config)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.init_weights()

    def forward(
        self,
        input_ids: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
    ) -> ModelOutput:
        """labels: as the class says; out.logits always, out.loss with labels."""
        self.check_labels(input_ids, labels)
        out = self.bert(
            input_ids, token_type_ids, attention_mask, output_attentions, output_hidden_states
        )
        out.logits = self.classifier(self.dropout(self.features(out)))
        if labels is not None:
            out.loss = self.loss(out.logits, labels)
        return out

    def check_labels(self, input_ids, labels: torch.Tensor | None) -> None:
        """A clear error for labels of the wrong shape (BertModel checks input_ids)."""

    def features(self, out: ModelOutput) -> torch.Tensor:
        raise NotImplementedError

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class BertForSequenceClassification(_Classifier):
    """BERT with a classifier on the pooled [CLS] vector: (batch, seq) -> (batch, num_labels).

    labels: (batch,) class indices in [0, num_labels).
    """

    def features(self, out: ModelOutput) -> torch.Tensor:
        return out.pooler_output  # (batch, hidden)

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits.float(), labels.view(-1))


class BertForTokenClassification(_Classifier):
    """BERT with a classifier on every position: (batch, seq) -> (batch, seq, num_labels).

    labels: (batch, seq) class ids, -100 where a position is not scored. For tagging words
    (named entities, word roles): as in the BERT paper's CoNLL experiment, a word's label sits on
    its first WordPiece, and the other pieces, [CLS], [SEP] and padding carry -100 and are left
    out of the loss. Weights and outputs match Hugging Face's `BertForTokenClassification`,
    which has no pooler.
    """

    def _is_tied(self, name: str) -> bool:
        # Weights neither saved nor expected: the pooler, which no token reads (HF has none).
        return name.startswith("bert.pooler.")

    def check_labels(self, input_ids, labels: torch.Tensor | None) -> None:
        if labels is not None and (
            not isinstance(input_ids, torch.Tensor) or labels.shape != input_ids.shape
        ):
            shape = tuple(input_ids.shape) if isinstance(input_ids, torch.Tensor) else None
            raise ValueError(
                f"labels must have the shape of input_ids {shape}, got {tuple(labels.shape)}: "
                "one label per token, -100 where none"
            )

    def features(self, out: ModelOutput) -> torch.Tensor:
        return out.last_hidden_state  # (batch, seq, hidden)

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(
            logits.float().flatten(0, 1), labels.flatten(), ignore_index=IGNORE_INDEX
        )


def load_config(directory: str | Path) -> BertConfig:
    """The BertConfig of a saved model directory (CheckpointError if its values are bad)."""
    config_file = Path(directory) / "config.json"
    values = hub.read_config(config_file)
    try:
        return BertConfig.from_dict(values)
    except (ValueError, TypeError) as error:
        raise hub.CheckpointError(f"{config_file}: {error}") from None


def training_flops_per_step(config: BertConfig, batch: int, seq: int, mlm_positions: int) -> int:
    """Matmul FLOPs of one training step (forward + backward) of BertForPreTraining.

    2 FLOPs per multiply-add forward and twice that backward: 6 per weight per token.

        6*B*S*L*(4H^2 + 2*H*I)     the encoder's matmuls: Q, K, V, output (4H^2) and the FFN (2HI)
      + 12*B*L*S^2*H               attention scores Q K^T and the weighted sum of V
      + 6*M*(H^2 + H*V)            the MLM head: transform (H^2) and vocabulary decoder (HV)

    mlm_positions (M): positions the MLM head runs on (batch * seq for a dense head). Embedding
    look-ups, LayerNorms, softmaxes, the pooler and NSP head are left out (a fraction of a %).
    Taught in chapter 10, chapters/10_scaling_up.ipynb.
    """
    refuse_if_checked("training_flops_per_step")  # see bertmini.guard
    hidden, layers, inter = config.hidden_size, config.num_hidden_layers, config.intermediate_size
    encoder = 6 * batch * seq * layers * (4 * hidden**2 + 2 * hidden * inter)
    attention = 12 * batch * layers * seq**2 * hidden
    mlm_head = 6 * mlm_positions * (hidden**2 + hidden * config.vocab_size)
    return encoder + attention + mlm_head
