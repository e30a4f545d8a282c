"""Top-k counts and the confusion matrix, against numpy."""

import numpy as np
import torch

from training.metrics import confusion_matrix, topk_correct


def test_topk_correct_counts_rows_whose_label_is_among_the_k_highest(rng) -> None:
    logits = rng.standard_normal((50, 6))
    labels = rng.integers(0, 6, 50)
    ranks = (logits > logits[np.arange(50), labels][:, None]).sum(axis=1)  # logits above the label's
    for k in (1, 3, 6, 9):  # k above the class count counts every row
        assert topk_correct(torch.tensor(logits), torch.tensor(labels), k) == int((ranks < k).sum())


def test_confusion_matrix_puts_true_classes_in_rows(rng) -> None:
    labels, predictions = rng.integers(0, 4, 80), rng.integers(0, 4, 80)
    expected = np.zeros((4, 4), dtype=np.int64)
    np.add.at(expected, (labels, predictions), 1)
    got = confusion_matrix(torch.tensor(predictions), torch.tensor(labels), 4)
    assert np.array_equal(got.numpy(), expected)
