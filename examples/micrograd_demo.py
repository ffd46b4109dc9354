"""micrograd's demo on pyad: a small MLP learns to separate two interleaved half moons.

The training code is micrograd's demo (an MLP(2, [16, 16, 1]) classifier, SVM max-margin
loss with 1e-4 L2 regularisation, 100 steps of SGD with the learning rate going from 1.0 to
0.1), and the only change is the import: ``pyad.compat.micrograd`` instead of ``micrograd``.
The data are made with numpy alone (no scikit-learn): two noisy half circles, seeded.

    python examples/micrograd_demo.py                   # train with pyad
    python examples/micrograd_demo.py --plot demo.png   # and draw loss, accuracy, boundary
    python examples/micrograd_demo.py --engine micrograd  # the same script on micrograd
    python examples/micrograd_demo.py --compare         # both in one run: times, speedup

micrograd takes minutes where pyad takes a second or two: ``--compare`` prints both times,
the speedup, and the largest difference between the two loss curves (the models start from
the same weights and compute the same sums, so it is a few units in the last place).

``--engine micrograd`` and ``--compare`` need micrograd (``pip install micrograd``);
``--plot`` needs matplotlib (``pip install matplotlib``): ``pip install -e ".[examples]"``
installs both.
"""

from __future__ import annotations

import argparse
import importlib
import random
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

ENGINES = {
    "pyad": ("pyad.compat.micrograd.engine", "pyad.compat.micrograd.nn"),
    "micrograd": ("micrograd.engine", "micrograd.nn"),
}


def make_moons(n_samples: int = 100, noise: float = 0.1, seed: int = 1337) -> tuple[Any, Any]:
    """Two interleaved half circles with Gaussian noise: points ``X`` (n, 2) and labels ``y``
    in {-1, 1}. The upper moon is centred at (0, 0), the lower one at (1, 0.5)."""
    rng = np.random.RandomState(seed)
    n_upper = n_samples // 2
    n_lower = n_samples - n_upper
    t_upper = np.linspace(0.0, np.pi, n_upper)
    t_lower = np.linspace(0.0, np.pi, n_lower)
    upper = np.column_stack([np.cos(t_upper), np.sin(t_upper)])
    lower = np.column_stack([1.0 - np.cos(t_lower), 0.5 - np.sin(t_lower)])
    X = np.vstack([upper, lower]) + rng.normal(scale=noise, size=(n_samples, 2))
    y = np.concatenate([np.full(n_upper, -1), np.full(n_lower, 1)])
    order = rng.permutation(n_samples)
    return X[order], y[order]


@dataclass
class Run:
    """What one training run reports."""

    engine: str
    seconds: float = 0.0
    losses: list[float] = field(default_factory=list)
    accuracies: list[float] = field(default_factory=list)
    final_loss: float = 0.0
    final_accuracy: float = 0.0
    model: Any = None
    Value: Any = None


def load(engine: str) -> tuple[Any, Any]:
    """``Value`` and ``MLP`` of ``engine``: the one line that differs between the two."""
    engine_module, nn_module = ENGINES[engine]
    return importlib.import_module(engine_module).Value, importlib.import_module(nn_module).MLP


def train(engine: str, X: Any, y: Any, steps: int = 100, seed: int = 1337) -> Run:
    """micrograd's demo, verbatim but for where Value and MLP come from."""
    Value, MLP = load(engine)
    random.seed(seed)
    model = MLP(2, [16, 16, 1])  # 2-layer neural network
    print(model)
    print("number of parameters", len(model.parameters()))

    def loss(batch_size: int | None = None) -> tuple[Any, float]:
        # inline DataLoader :)
        if batch_size is None:
            Xb, yb = X, y
        else:
            ri = np.random.permutation(X.shape[0])[:batch_size]
            Xb, yb = X[ri], y[ri]
        inputs = [list(map(Value, xrow)) for xrow in Xb]

        # forward the model to get scores
        scores = list(map(model, inputs))

        # svm "max-margin" loss
        losses = [(1 + -yi * scorei).relu() for yi, scorei in zip(yb, scores)]
        data_loss = sum(losses) * (1.0 / len(losses))
        # L2 regularization
        alpha = 1e-4
        reg_loss = alpha * sum(p * p for p in model.parameters())
        total_loss = data_loss + reg_loss

        # also get accuracy
        accuracy = [(yi > 0) == (scorei.data > 0) for yi, scorei in zip(yb, scores)]
        return total_loss, sum(accuracy) / len(accuracy)

    run = Run(engine, model=model, Value=Value)
    start = time.perf_counter()
    for k in range(steps):
        # forward
        total_loss, acc = loss()

        # backward
        model.zero_grad()
        total_loss.backward()

        # update (sgd)
        learning_rate = 1.0 - 0.9 * k / 100
        for p in model.parameters():
            p.data -= learning_rate * p.grad

        run.losses.append(float(total_loss.data))
        run.accuracies.append(float(acc))
        if k % 10 == 0 or k == steps - 1:
            print(f"step {k} loss {total_loss.data}, accuracy {acc * 100}%")
    run.seconds = time.perf_counter() - start

    total_loss, acc = loss()  # the trained model
    run.final_loss, run.final_accuracy = float(total_loss.data), float(acc)
    print(
        f"{engine}: trained in {run.seconds:.2f} s; final loss {run.final_loss:.6f}, "
        f"accuracy {run.final_accuracy * 100:.1f}%"
    )
    return run


def plot(path: str, runs: list[Run], X: Any, y: Any, plt: Any) -> None:
    """Loss and accuracy per step of each run, and the first run's decision boundary."""
    fig, (ax_loss, ax_acc, ax_map) = plt.subplots(1, 3, figsize=(15, 4.5))
    styles = {"pyad": "-", "micrograd": "--"}
    for run in runs:
        steps = range(len(run.losses))
        label = f"{run.engine} ({run.seconds:.1f} s)"
        ax_loss.plot(steps, run.losses, styles[run.engine], label=label)
        ax_acc.plot(steps, [100 * a for a in run.accuracies], styles[run.engine], label=label)
    ax_loss.set(title="training loss", xlabel="step", ylabel="loss (max-margin + L2)")
    ax_loss.set_yscale("log")
    ax_acc.set(title="training accuracy", xlabel="step", ylabel="accuracy (%)")
    ax_acc.set_ylim(40, 102)
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()

    run = runs[0]
    h = 0.05
    x_min, x_max = X[:, 0].min() - 1, X[:, 0].max() + 1
    y_min, y_max = X[:, 1].min() - 1, X[:, 1].max() + 1
    xx, yy = np.meshgrid(np.arange(x_min, x_max, h), np.arange(y_min, y_max, h))
    mesh = np.c_[xx.ravel(), yy.ravel()]
    scores = [run.model([run.Value(a), run.Value(b)]).data for a, b in mesh]
    Z = np.where(np.array(scores) > 0, 1, -1).reshape(xx.shape)
    colours = {"cmap": plt.cm.Spectral, "vmin": -1, "vmax": 1}
    ax_map.contourf(xx, yy, Z, levels=[-1.5, 0, 1.5], alpha=0.6, **colours)
    ax_map.scatter(X[:, 0], X[:, 1], c=y, s=30, edgecolors="k", **colours)
    ax_map.set(title=f"decision boundary ({run.engine})", xlim=(x_min, x_max))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=sorted(ENGINES), default="pyad")
    parser.add_argument(
        "--compare", action="store_true", help="train with pyad and with micrograd, in one run"
    )
    parser.add_argument("--plot", metavar="PATH", help="write loss/accuracy curves to a PNG")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1337)
    args = parser.parse_args(argv)

    plt = None
    if args.plot:
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            print("--plot needs matplotlib: pip install matplotlib", file=sys.stderr)
            return 2
    engines = ["pyad", "micrograd"] if args.compare else [args.engine]
    for engine in engines:
        try:
            load(engine)
        except ImportError as exc:
            print(f"cannot run {engine} ({exc}): pip install {engine}", file=sys.stderr)
            return 2

    np.random.seed(args.seed)
    X, y = make_moons(n_samples=100, noise=0.1, seed=args.seed)
    runs = [train(engine, X, y, args.steps, args.seed) for engine in engines]

    if args.compare:
        ours, theirs = runs
        gap = max(abs(a - b) for a, b in zip(ours.losses, theirs.losses))
        print(
            f"\n{args.steps} steps: pyad {ours.seconds:.2f} s, micrograd {theirs.seconds:.2f} s: "
            f"pyad is {theirs.seconds / ours.seconds:.1f}x faster"
        )
        print(f"largest difference between the two loss curves: {gap:.3g}")
    if plt is not None:
        plot(args.plot, runs, X, y, plt)
    return 0


if __name__ == "__main__":
    sys.exit(main())
