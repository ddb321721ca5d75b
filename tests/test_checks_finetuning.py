"""The chapter 08 checks accept correct answers (and bertmini's own model) and name the typical
mistakes of a classification head and of an evaluation loop."""

import pytest
import torch
import torch.nn.functional as F

from bertmini.checks import CheckFailed
from bertmini.checks.finetuning import (
    check_classification_head,
    check_evaluation_loop,
    check_finetuning_loop,
    make_evaluation_setup,
    reference_classification_loss,
    reference_evaluate_accuracy,
    reference_train_epoch,
)
from bertmini.model import BertConfig, BertForSequenceClassification
from bertmini.train import evaluate, training_step

# --- Exercise 1: the classification head and loss ----------------------------------------------


def student_head(pool="cls", activation="tanh", pooler=True, loss="ce", output="logits"):
    """A head as a student would write it, with one choice made (right or wrong)."""

    def classification_loss(last_hidden_state, pooler_layer, classifier, labels):
        h = {
            "cls": last_hidden_state[:, 0],
            "mean": last_hidden_state.mean(dim=1),
            "last": last_hidden_state[:, -1],
        }[pool]
        if pooler:
            h = pooler_layer(h)
            h = {"tanh": torch.tanh, "none": lambda x: x, "relu": torch.relu}[activation](h)
        logits = classifier(h)
        if loss == "ce":
            value = F.cross_entropy(logits, labels)
        elif loss == "softmax_ce":
            value = F.cross_entropy(torch.softmax(logits, dim=-1), labels)
        elif loss == "mse":
            value = F.mse_loss(logits.softmax(-1), F.one_hot(labels, logits.shape[-1]).float())
        elif loss == "nll":
            value = F.nll_loss(logits, labels)
        elif loss == "sum":
            value = F.cross_entropy(logits, labels, reduction="sum")
        elif loss == "item":
            value = F.cross_entropy(logits, labels).item()
        elif loss == "detach":
            value = F.cross_entropy(logits, labels).detach()
        elif loss == "none":
            value = F.cross_entropy(logits, labels, reduction="none")
        if output == "probabilities":
            logits = logits.softmax(-1)
        return (value, logits) if output == "swapped" else (logits, value)

    return classification_loss


def test_head_reference_and_student_pass(capsys):
    check_classification_head(reference_classification_loss)
    check_classification_head(student_head())
    assert capsys.readouterr().out.count("✅ classification_loss: correct") == 2


def test_head_matches_bertmini_model():
    """The reference is what BertForSequenceClassification computes (in eval mode)."""
    torch.manual_seed(0)
    config = BertConfig.preset("tiny", vocab_size=50, num_labels=3)
    model = BertForSequenceClassification(config).eval()
    input_ids = torch.randint(5, 50, (4, 7))
    labels = torch.tensor([0, 2, 1, 2])
    out = model(input_ids, labels=labels)
    hidden = model.bert(input_ids).last_hidden_state
    logits, loss = reference_classification_loss(
        hidden, model.bert.pooler, model.classifier, labels
    )
    torch.testing.assert_close(logits, out.logits)
    torch.testing.assert_close(loss, out.loss)


@pytest.mark.parametrize(
    "student, words",
    [
        (student_head(pool="mean"), "mean pooling"),
        (student_head(pool="last"), "the last position"),
        (student_head(pooler=False), "pooler is skipped"),
        (student_head(activation="none"), "tanh is missing"),
        (student_head(activation="relu"), "not ReLU"),
        (student_head(loss="softmax_ce"), "softmax is applied twice"),
        (student_head(loss="mse"), "mean squared error"),
        (student_head(loss="nll"), "nll_loss expects log-probabilities"),
        (student_head(loss="sum"), "summed over the batch"),
        (student_head(loss="item"), r"do not call \.item\(\)"),
        (student_head(loss="detach"), "carries no gradient"),
        (student_head(loss="none"), "must be one number"),
        (student_head(output="probabilities"), "probabilities"),
        (student_head(output="swapped"), "swapped"),
    ],
)
def test_head_mistakes_are_named(student, words):
    with pytest.raises(CheckFailed, match=words):
        check_classification_head(student)


def test_head_logits_for_every_position_are_named():
    def classification_loss(last_hidden_state, pooler, classifier, labels):
        logits = classifier(torch.tanh(pooler(last_hidden_state)))  # (batch, seq, num_labels)
        return logits, F.cross_entropy(logits[:, 0], labels)

    with pytest.raises(CheckFailed, match="one prediction per position"):
        check_classification_head(classification_loss)


def test_head_under_no_grad_is_named():
    def classification_loss(last_hidden_state, pooler, classifier, labels):
        with torch.no_grad():
            return reference_classification_loss(last_hidden_state, pooler, classifier, labels)

    with pytest.raises(CheckFailed, match="torch.no_grad"):
        check_classification_head(classification_loss)


def test_head_stub_lets_not_implemented_through():
    def stub(last_hidden_state, pooler, classifier, labels):
        raise NotImplementedError

    with pytest.raises(NotImplementedError):
        check_classification_head(stub)


# --- Exercise 2: the evaluation loop -------------------------------------------------------------


def student_evaluate(
    eval_mode=True, no_grad=True, restore="was_training", average="examples", stop_after=None
):
    """An evaluation loop as a student would write it, with one choice made."""

    def evaluate_accuracy(model, loader):
        was_training = model.training
        if eval_mode:
            model.eval()
        correct = total = 0
        accuracies = []
        with torch.set_grad_enabled(not no_grad):
            for index, batch in enumerate(loader):
                predictions = model(**batch).logits.argmax(-1)
                right = (predictions == batch["labels"]).sum().item()
                correct += right
                total += len(batch["labels"])
                accuracies.append(right / len(batch["labels"]))
                if stop_after is not None and index + 1 == stop_after:
                    break
        if restore == "was_training":
            model.train(was_training)
        elif restore == "always_train":
            model.train()
        if average == "batches":
            return sum(accuracies) / len(accuracies)
        if average == "count":
            return correct
        if average == "percent":
            return 100 * correct / total
        if average == "full_batches":
            return correct / (len(accuracies) * 8)
        if average == "tensor":
            return torch.tensor(correct / total)
        return correct / total

    return evaluate_accuracy


def test_evaluation_setup_is_what_the_check_needs():
    model, loader = make_evaluation_setup()
    sizes = [len(batch["labels"]) for batch in loader]
    assert sizes == [8, 8, 8, 3]
    assert model.training
    model.eval()
    with torch.no_grad():
        per_batch = [
            (model(**b).logits.argmax(-1) == b["labels"]).float().mean().item() for b in loader
        ]
    overall = reference_evaluate_accuracy(model, loader)
    assert overall == pytest.approx(11 / 27)
    assert abs(sum(per_batch) / len(per_batch) - overall) > 0.05  # averaging batches is wrong
    assert not model.training  # the reference keeps eval mode when it was given eval mode
    # dropout matters: in train mode, the predictions of some examples change
    model.train()
    batch = next(iter(loader))
    with torch.no_grad():
        eval_predictions = model.eval()(**batch).logits.argmax(-1)
        torch.manual_seed(0)
        train_predictions = model.train()(**batch).logits.argmax(-1)
    assert not torch.equal(eval_predictions, train_predictions)


def test_evaluation_reference_and_students_pass(capsys):
    check_evaluation_loop(reference_evaluate_accuracy)
    check_evaluation_loop(student_evaluate())
    check_evaluation_loop(student_evaluate(average="tensor"))  # a 0-d tensor is fine too
    assert capsys.readouterr().out.count("✅ evaluate_accuracy: correct") == 3


def test_bertmini_evaluate_is_refused():
    """bertmini.train.evaluate computes the same accuracy, but the exercise is to write it."""
    with pytest.raises(CheckFailed, match="bertmini's own evaluate, which refuses"):
        check_evaluation_loop(lambda model, loader: evaluate(model, loader)["accuracy"])


@pytest.mark.parametrize(
    "student, words",
    [
        (student_evaluate(eval_mode=False), r"call model\.eval\(\)"),
        (student_evaluate(no_grad=False), r"torch\.no_grad\(\)"),
        (student_evaluate(restore=None), "left in eval mode"),
        (student_evaluate(restore="always_train"), "left in training mode"),
        (student_evaluate(average="batches"), "averaged the per-batch accuracies"),
        (student_evaluate(average="count"), "not the count"),
        (student_evaluate(average="percent"), "not a percentage"),
        (student_evaluate(average="full_batches"), "last batch is smaller"),
        (student_evaluate(stop_after=1), "ran on 1 of the 4 batches"),
    ],
)
def test_evaluation_mistakes_are_named(student, words):
    with pytest.raises(CheckFailed, match=words):
        check_evaluation_loop(student)


def test_evaluation_stub_lets_not_implemented_through():
    def stub(model, loader):
        raise NotImplementedError

    with pytest.raises(NotImplementedError):
        check_evaluation_loop(stub)


# --- the fine-tuning loop ----------------------------------------------------------------------


def student_epoch(
    train_mode=True, zero_grad="start", clip=True, schedule="after", step_every=1, as_float=True
):
    """The fine-tuning loop as a student would write it, with one choice made."""

    def train_epoch(model, loader, optimizer, scheduler, max_grad_norm):
        if train_mode:
            model.train()
        losses = []
        for index, batch in enumerate(loader):
            if zero_grad == "start":
                optimizer.zero_grad()
            out = model(**batch)
            out.loss.backward()
            if clip is True or isinstance(clip, float):
                norm = max_grad_norm if clip is True else clip
                torch.nn.utils.clip_grad_norm_(model.parameters(), norm)
            if schedule == "before":
                scheduler.step()
            if index % step_every == 0:
                optimizer.step()
            if clip == "after step":
                torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
            if schedule == "after":
                scheduler.step()
            losses.append(out.loss.item() if as_float else out.loss)
        return losses

    return train_epoch


def test_finetuning_loop_passes_students_and_the_reference(capsys):
    check_finetuning_loop(student_epoch())
    check_finetuning_loop(reference_train_epoch)
    assert capsys.readouterr().out.count("✅ train_epoch: correct") == 2


@pytest.mark.parametrize(
    "wrong, words",
    [
        (student_epoch(train_mode=False), r"call model\.train\(\)"),
        (student_epoch(zero_grad=None), "never zeroed"),
        (student_epoch(clip=False), "not clipped"),
        (student_epoch(clip="after step"), "not clipped"),
        (student_epoch(clip=1.0), "not clipped"),
        (student_epoch(schedule=None), "learning rate never changed"),
        (student_epoch(schedule="before"), r"scheduler\.step\(\) ran before optimizer\.step\(\)"),
        (student_epoch(step_every=2), "ran 2 times for 4 batches"),
        (student_epoch(as_float=False), r"loss\.item\(\)"),
    ],
)
def test_finetuning_loop_mistakes_are_named(wrong, words):
    with pytest.raises(CheckFailed, match=words):
        check_finetuning_loop(wrong)


def test_finetuning_loop_refuses_bertminis_training_step():
    def via_bertmini(model, loader, optimizer, scheduler, max_grad_norm):
        scaler = torch.amp.GradScaler("cpu", enabled=False)
        model.train()
        return [
            float(
                training_step(model, [batch], optimizer, scaler, max_grad_norm=max_grad_norm)[
                    "loss"
                ]
            )
            for batch in loader
        ]

    with pytest.raises(CheckFailed, match="bertmini's own training_step, which refuses"):
        check_finetuning_loop(via_bertmini)
