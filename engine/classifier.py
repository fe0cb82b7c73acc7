"""The small MNIST CNN that scores generated digits (99.29 % test accuracy when shipped).

Images are (N, 1, 28, 28) in [0, 1]. ``class_probs``/``classify`` run it in batches; the
evaluation (``engine.evaluate``) reads its answers as sample accuracy, digit mix and confidence.
``features`` is its penultimate layer (128 ReLU units): the space of the lab's Fréchet distance.
"""

from __future__ import annotations

import torch
from torch import nn


class MNISTClassifier(nn.Module):
    """Two conv blocks (32 and 64 channels, each conv-BN-ReLU twice, then a 2x2 max-pool) and a
    two-layer head with dropout."""

    def __init__(self, num_hiddens: int = 32, num_classes: int = 10):
        super().__init__()
        d = num_hiddens
        self.net = nn.Sequential(
            nn.Conv2d(1, d, 3, padding=1), nn.BatchNorm2d(d), nn.ReLU(),
            nn.Conv2d(d, d, 3, padding=1), nn.BatchNorm2d(d), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(d, 2 * d, 3, padding=1), nn.BatchNorm2d(2 * d), nn.ReLU(),
            nn.Conv2d(2 * d, 2 * d, 3, padding=1), nn.BatchNorm2d(2 * d), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Dropout(0.3), nn.Linear(2 * d * 49, 128), nn.ReLU(),
            nn.Linear(128, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@torch.inference_mode()
def class_probs(classifier: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Softmax class probabilities (N, 10) for images (N, 1, 28, 28) in [0, 1]."""
    return torch.cat([classifier(b).softmax(1) for b in images.float().split(500)])


def classify(classifier: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Predicted labels for images (N, 1, 28, 28) in [0, 1]."""
    return class_probs(classifier, images).argmax(1)


@torch.inference_mode()
def features(classifier: MNISTClassifier, images: torch.Tensor) -> torch.Tensor:
    """Penultimate-layer activations (N, 128) for images (N, 1, 28, 28) in [0, 1]."""
    body = classifier.net[:-1].eval()  # everything but the last Linear; dropout off in eval
    return torch.cat([body(b).float() for b in images.float().split(500)])
