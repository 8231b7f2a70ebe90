"""The original project's end-to-end Hogwild! example, on costtrain's fixed implementation.

Trains the same model three ways (1 process x 4 epochs, 4 x 1, 2 x 2) with ``train_model``,
prints each test accuracy and elapsed time (``log_elapsed_time``) and charts the training
losses (``chart_losses``) to figures/hogwild_losses.png.

    python examples/hogwild_example.py                         # full Fashion-MNIST, as the original
    python examples/hogwild_example.py --subset 6000           # quicker
    python examples/hogwild_example.py --subset 2000 --epochs-scale 0.5
"""
from __future__ import annotations

import argparse
import time

import torch
from torch.utils.data import DataLoader

from costtrain.advice.plots import save_figure
from costtrain.data.datasets import load_dataset, tensor_dataset
from costtrain.data.models import SimpleNN
from costtrain.train.legacy import chart_losses, log_elapsed_time, train_model

CONFIGURATIONS = [(1, 4), (4, 1), (2, 2)]  # (processes, epochs per process), the original three


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--subset", type=int, default=None,
                   help="train on this many Fashion-MNIST images (default: all 60,000)")
    p.add_argument("--epochs-scale", type=float, default=1.0,
                   help="multiply every configuration's epochs per process (rounded, at least "
                        "1; below 1 the total work of the configurations differs)")
    p.add_argument("--log-interval", type=int, default=-1,
                   help="batches between worker log lines (-1: none, the default here)")
    p.add_argument("--figure", default="figures/hogwild_losses.png")
    args = p.parse_args()

    ds = load_dataset("fashion-mnist", subset=args.subset, seed=0)
    test_loader = DataLoader(tensor_dataset(ds, "test"), batch_size=1000)
    losses = {}
    for processes, epochs in CONFIGURATIONS:
        epochs = max(1, round(epochs * args.epochs_scale))
        label = (f"{processes} process{'es' if processes > 1 else ''} x "
                 f"{epochs} epoch{'s' if epochs > 1 else ''} NN")
        print(f"\n== {label}")
        torch.manual_seed(42)
        model = SimpleNN()
        train_loader = DataLoader(tensor_dataset(ds, "train"), batch_size=64, shuffle=True)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.5)
        start = time.time()
        losses[label] = train_model(model, train_loader, processes, epochs, optimizer,
                                    log_interval=args.log_interval, test_dataloader=test_loader)
        end = time.time()
        log_elapsed_time(processes, epochs, start, end)
    path = save_figure(chart_losses(losses), args.figure)
    print(f"\nloss chart: {path}")


if __name__ == "__main__":
    main()
