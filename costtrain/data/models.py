"""The nets of the course, selectable by name; any ``nn.Module`` works everywhere too."""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..utils import CosttrainError, momentum_fraction
from .sparse import SparseLinear, has_sparse_grads


class SimpleNN(nn.Module):
    """The classic 2-conv net of PyTorch's mnist_hogwild example (the original project's model)."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10, image_size: int = 28) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 10, kernel_size=5)
        self.conv2 = nn.Conv2d(10, 20, kernel_size=5)
        self.conv2_drop = nn.Dropout2d()
        side = ((image_size - 4) // 2 - 4) // 2
        self.fc1 = nn.Linear(20 * side * side, 50)
        self.fc2 = nn.Linear(50, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(F.max_pool2d(self.conv1(x), 2))
        x = F.relu(F.max_pool2d(self.conv2_drop(self.conv2(x)), 2))
        x = F.relu(self.fc1(x.flatten(1)))
        x = F.dropout(x, training=self.training)
        return F.log_softmax(self.fc2(x), dim=1)


class MLP(nn.Module):
    """A small multilayer perceptron (fast, a good Hogwild! candidate)."""

    def __init__(self, in_features: int = 784, hidden: int = 128, num_classes: int = 10) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(in_features, hidden), nn.ReLU(),
                                 nn.Linear(hidden, hidden), nn.ReLU(),
                                 nn.Linear(hidden, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class SmallCNN(nn.Module):
    """A small CNN suited to CIFAR-10 (three conv blocks, ~0.3 M parameters)."""

    def __init__(self, in_channels: int = 3, num_classes: int = 10, image_size: int = 32) -> None:
        super().__init__()

        def block(i: int, o: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(i, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU(),
                                 nn.MaxPool2d(2))
        self.features = nn.Sequential(block(in_channels, 32), block(32, 64), block(64, 128))
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(0.25),
                                  nn.Linear(128 * (image_size // 8) ** 2, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def _simple(shape: tuple[int, int, int], n: int) -> nn.Module:
    return SimpleNN(shape[0], n, shape[1])


def _mlp(shape: tuple[int, int, int], n: int) -> nn.Module:
    return MLP(shape[0] * shape[1] * shape[2], 128, n)


def _cnn(shape: tuple[int, int, int], n: int) -> nn.Module:
    return SmallCNN(shape[0], n, shape[1])


def _sparse_linear(shape: tuple[int, ...], n: int) -> nn.Module:
    return SparseLinear(shape[0], n)


MODELS: dict[str, Callable[[tuple[int, ...], int], nn.Module]] = {
    "simple": _simple, "mlp": _mlp, "cnn": _cnn, "sparse-linear": _sparse_linear}
DEFAULT_LR, DEFAULT_MOMENTUM = 0.01, 0.5  # the classic example's SGD, for the dense nets


def build_model(name: str, input_shape: tuple[int, ...] = (1, 28, 28),
                num_classes: int = 10) -> nn.Module:
    """A fresh model by name (``simple``, ``mlp``, ``cnn``, ``sparse-linear``) for the input shape.

    ``sparse-linear`` takes a sparse dataset's shape ``(features,)``; the others take images
    ``(channels, height, width)``.
    """
    if name not in MODELS:
        raise CosttrainError(f"unknown model {name!r}; choose one of {', '.join(MODELS)} "
                             "or pass your own nn.Module.")
    if (name == "sparse-linear") != (len(input_shape) == 1):
        raise CosttrainError(
            f"model {name!r} does not fit input shape {tuple(input_shape)}: 'sparse-linear' "
            "needs a sparse dataset (sparse-synthetic, wordnet-supersense), the other models "
            "need images.")
    if name in ("simple", "cnn") and input_shape[1] < (16 if name == "simple" else 8):
        raise CosttrainError(f"model {name!r} needs images of at least 16x16, got {input_shape}.")
    return MODELS[name](tuple(input_shape), num_classes)  # type: ignore[arg-type]


def model_name(net: nn.Module) -> str:
    """The registry name of a built-in model, else its class name."""
    return {SimpleNN: "simple", MLP: "mlp", SmallCNN: "cnn",
            SparseLinear: "sparse-linear"}.get(type(net), type(net).__name__)


def sgd_settings(net: nn.Module, lr: float | None, momentum: float | None,
                 allow_sparse_momentum: bool = False) -> tuple[float, float]:
    """The (lr, momentum) of the default SGD for `net`; None = the model's recommendation.

    Dense nets: lr 0.01, momentum 0.5 (the classic example). Nets with sparse gradients
    (``EmbeddingBag(sparse=True)``): the model's ``sparse_lr`` (else 0.01) and momentum 0,
    because a momentum buffer turns every later step into a write of every row ever touched.
    An explicit momentum > 0 for such a net is refused unless `allow_sparse_momentum` (a
    parameter server steps on dense gradients).
    """
    if momentum is not None:
        momentum_fraction(momentum)  # 1 or more diverges, whatever the method
    if not has_sparse_grads(net):
        return (DEFAULT_LR if lr is None else lr,
                DEFAULT_MOMENTUM if momentum is None else momentum)
    if momentum and not allow_sparse_momentum:
        raise CosttrainError(
            f"momentum={momentum} with {model_name(net)!r}, whose gradients are sparse: the "
            "momentum buffer would make every step write every row ever touched, losing what "
            "makes a sparse model fast (and Hogwild! safe). Leave momentum out (or 0) for "
            "sparse models, or pass your own optimizer.")
    return (getattr(net, "sparse_lr", DEFAULT_LR) if lr is None else lr,
            0.0 if momentum is None else momentum)


def display_name(net: nn.Module | str, model: nn.Module | None = None) -> str:
    """What results call the net: the name it was asked for, else the built model's name."""
    if isinstance(net, str):
        return net
    return model_name(model if model is not None else net)


def multiply_adds(net: nn.Module, input_shape: tuple[int, ...]) -> dict[str, int]:
    """Multiply-adds per sample of `net`'s convolutions and linear layers, counted from their
    shapes on one (zero) input of `input_shape`: ``forward``; ``backward``, the weight
    gradients (as many as forward) plus the input gradients of every such layer but the
    first; and ``parameters``. Activations, pooling and the loss are left out (a few %)."""
    layers: list[int] = []

    def count(module: nn.Module, inputs, output) -> None:
        if isinstance(module, nn.Conv2d):
            per_out = module.in_channels // module.groups * module.kernel_size[0] \
                * module.kernel_size[1]
            layers.append(output[0].numel() * per_out)
        elif isinstance(module, nn.Linear):
            layers.append(module.in_features * module.out_features)
    hooks = [m.register_forward_hook(count) for m in net.modules()
             if isinstance(m, (nn.Conv2d, nn.Linear))]
    was_training = net.training
    try:
        net.eval()
        with torch.no_grad():
            net(torch.zeros(1, *input_shape))
    finally:
        for h in hooks:
            h.remove()
        net.train(was_training)
    forward = sum(layers)
    return {"forward": forward, "backward": forward + sum(layers[1:]),
            "parameters": sum(p.numel() for p in net.parameters())}
