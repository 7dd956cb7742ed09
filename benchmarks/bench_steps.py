"""Throughput of one SimCLR / BYOL training step: minissl against the same step built on lightly.

Two workloads, each with the same network on both sides (so the comparison is about the
self-supervised machinery, not about two networks), two augmented views per image, AdamW:

* ``--backbone resnet18`` (the default): the step of the SimCLR and BYOL papers on CIFAR-10,
  a CIFAR ResNet-18 (3x3 stem, no max-pool; ``minissl.nn.backbone("resnet18")``) on 32x32
  random images;
* ``--backbone convnet``: the book's own workload, the quick profile's ConvNet (its width and
  image size from ``minissl.profiles``, batch 128 by default) on images of the profile's data
  set (``shapes``), measured at 1 and 2 threads unless ``--threads`` says otherwise.

* **minissl**: ``SimCLR(encoder)`` / ``BYOL(encoder)`` trained by ``minissl.train.fit`` on an
  in-memory ``ImageDataset``: batches are tensor slices and the two views are made on the
  whole batch tensor (``TwoViews(SimCLRAugment)`` / ``BYOLAugment``) inside
  ``training_step``.
* **lightly**: lightly's ``SimCLRTransform`` (``cj_strength=0.5``, no blur, as SimCLR on
  CIFAR-10) or ``BYOLTransform`` (no blur at 32 px, solarize 0.2 in view 2, as minissl's
  recipe) on PIL images in a standard ``torch.utils.data.DataLoader`` (a data set that returns
  ``transform(PIL image)`` like ``torchvision.datasets.CIFAR10``), ``SimCLRProjectionHead`` +
  ``NTXentLoss`` or ``BYOLProjectionHead`` + ``BYOLPredictionHead`` +
  ``NegativeCosineSimilarity`` + ``update_momentum`` with ``cosine_schedule``; the loop of
  lightly's own examples. Head sizes match minissl's defaults (hidden 512, output 128).

Three figures per method and side, in source images per second (one image = two views):

* **end to end**: data loading + augmentation + forward/backward/optimizer step;
* **model step**: forward/backward/optimizer step alone, on views made beforehand (the same
  tensors for both sides; minissl's own ``training_step`` runs with its augmentation replaced
  by the pre-made views);
* **data + aug**: batching and the two views alone (minissl: a slice of the in-memory tensor
  and the batched augmentation; lightly: ``next()`` on the DataLoader), which shows how much
  of the end-to-end step the input pipeline is.

Both sides run in this one process with the same torch thread count, interleaved A/B (the
order flips every repetition) so that a busy machine slows both alike; each images/s figure
is the median over ``--repeats`` timed blocks of ``--steps`` steps, after one warm-up step per
side, and the speed-up (minissl over lightly) is the median of each repetition's own ratio.
Figures are printed, never asserted. With both sides, the last line is
``end-to-end speed-up: X.XXx``, the geometric mean of the end-to-end speed-ups of every method
and thread count measured. For the ResNet-18 the default batch of 32 keeps the default run
within about three minutes on a 2-core CPU (a CIFAR ResNet-18 step costs about 40 ms per
view per core there, and images/s hardly depends on the batch size on a CPU); the batch of
the papers' CIFAR runs is ``--batch 256`` or more. Usage::

    pip install -e ".[bench]"          # lightly, for the comparison
    python benchmarks/bench_steps.py [--backbone resnet18|convnet] [--batch 32] [--steps 1]
                                     [--repeats 3] [--threads 1[,2]] [--methods simclr,byol]
                                     [--sides minissl,lightly] [--workers 0] [--width 64]
                                     [--channels-last] [--precision fp32|bf16] [--quick]
    python benchmarks/bench_steps.py --backbone convnet   # the book's workload, 1 and 2 threads
    python benchmarks/bench_steps.py --batch 256          # a larger ResNet-18 batch (~15 min)
"""

from __future__ import annotations

import argparse
import copy
import math
import os
import statistics
import sys
import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from minissl.augment import BYOLAugment, SimCLRAugment, TwoViews
from minissl.data import ImageDataset
from minissl.methods.byol import BYOL
from minissl.methods.simclr import SimCLR
from minissl.nn import backbone
from minissl.profiles import PROFILES
from minissl.train import TrainConfig, fit, make_optimizer

METHODS = ("simclr", "byol")
SIDES = ("minissl", "lightly")
PARTS = ("end to end", "model step", "data + aug")
BACKBONES = ("resnet18", "convnet")
BOOK = PROFILES["quick"]  # the book's default workload: its ConvNet, image size and batch
LR, WEIGHT_DECAY = 1e-3, 1e-4  # AdamW on both sides (fit's default optimizer)
PROJ_DIM = 128  # output of the projection (and BYOL prediction) head, both sides
TOTAL_STEPS = 1000  # the horizon of BYOL's momentum schedule (its value does not change costs)


def _lightly_missing() -> str | None:
    """None when lightly imports, else a message that says how to get it."""
    try:
        import lightly.loss  # noqa: F401
        import lightly.models.modules  # noqa: F401
        import lightly.transforms  # noqa: F401
    except ImportError as err:
        return (f"lightly is not installed ({err}); install it with pip install -e '.[bench]' "
                "(or `make bench`), or run only our side with --sides minissl")
    return None


# --------------------------------------------------------------------------- minissl's side
class _PremadeViews(nn.Module):
    """Stands in for a method's augmentation and returns the pair of views made beforehand,
    so that ``training_step`` itself runs unchanged."""

    def __init__(self, v1: torch.Tensor, v2: torch.Tensor) -> None:
        super().__init__()
        self.v1, self.v2 = v1, v2

    def forward(self, x: torch.Tensor):
        return self.v1, self.v2


class Ours:
    """minissl's method, trained end to end by ``fit`` or stepped by hand on pre-made views."""

    name = "minissl"

    def __init__(self, method: str, encoder: nn.Module, images: torch.Tensor, batch: int,
                 views: tuple[torch.Tensor, torch.Tensor], precision: str = "fp32") -> None:
        self.precision = precision
        size = images.shape[-1]
        if method == "simclr":
            self.model: nn.Module = SimCLR(encoder, TwoViews(SimCLRAugment(size)),
                                           proj_dim=PROJ_DIM, temperature=0.5)
        else:
            self.model = BYOL(encoder, BYOLAugment(size), proj_dim=PROJ_DIM, hidden_dim=512)
        self.augment = self.model.augment
        self.premade = _PremadeViews(*views)
        self.data = ImageDataset(images, torch.zeros(len(images), dtype=torch.long),
                                 ["none"], "random")
        self.batch = batch
        self.x = images[:batch]  # what training_step receives (ignored: views are pre-made)
        self.step = 0

    def end_to_end(self, steps: int) -> None:
        self.model.augment = self.augment
        cfg = TrainConfig(max_steps=steps, batch_size=self.batch, lr=LR,
                          weight_decay=WEIGHT_DECAY, progress=False, device="cpu",
                          seed=self.step, precision=self.precision)
        fit(self.model, self.data, cfg)
        self.step += steps

    def model_step(self, steps: int) -> None:
        self.model.augment = self.premade
        opt = make_optimizer(self.model, TrainConfig(lr=LR, weight_decay=WEIGHT_DECAY))
        for _ in range(steps):
            with _autocast(self.precision):
                out = self.model.training_step((self.x, None))
            opt.zero_grad(set_to_none=True)
            out["loss"].backward()
            opt.step()
            self.step += 1
            if hasattr(self.model, "on_after_step"):
                self.model.on_after_step(self.step, TOTAL_STEPS)
            float(out["loss"].detach())  # what fit logs every step
        self.model.augment = self.augment

    def data_only(self, steps: int) -> None:
        images = self.data.images
        for _ in range(steps):
            x = images[torch.randperm(len(images))[:self.batch]]  # fit's batches are slices
            self.augment(x)


def _autocast(precision: str):
    """bf16 autocast on the CPU, or nothing for fp32: the same context on both sides."""
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16")


# --------------------------------------------------------------------------- lightly's side
class _PILImages(torch.utils.data.Dataset):
    """uint8 (N, H, W, 3) pixels served as ``transform(PIL image), label``, as CIFAR10 does."""

    def __init__(self, pixels: np.ndarray, transform: Callable) -> None:
        self.pixels, self.transform = pixels, transform

    def __len__(self) -> int:
        return len(self.pixels)

    def __getitem__(self, i: int):
        from PIL import Image

        return self.transform(Image.fromarray(self.pixels[i])), 0


class _LightlySimCLR(nn.Module):
    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        from lightly.models.modules import SimCLRProjectionHead

        self.backbone = encoder
        d = encoder.feature_dim
        self.projection_head = SimCLRProjectionHead(d, d, PROJ_DIM)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.projection_head(self.backbone(x).flatten(start_dim=1))


class _LightlyBYOL(nn.Module):
    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        from lightly.models.modules import BYOLPredictionHead, BYOLProjectionHead
        from lightly.models.utils import deactivate_requires_grad

        self.backbone = encoder
        self.projection_head = BYOLProjectionHead(encoder.feature_dim, 512, PROJ_DIM)
        self.prediction_head = BYOLPredictionHead(PROJ_DIM, 512, PROJ_DIM)
        self.backbone_momentum = copy.deepcopy(self.backbone)
        self.projection_head_momentum = copy.deepcopy(self.projection_head)
        deactivate_requires_grad(self.backbone_momentum)
        deactivate_requires_grad(self.projection_head_momentum)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.projection_head(self.backbone(x).flatten(start_dim=1))
        return self.prediction_head(z)

    def forward_momentum(self, x: torch.Tensor) -> torch.Tensor:
        y = self.backbone_momentum(x).flatten(start_dim=1)
        return self.projection_head_momentum(y).detach()


class Theirs:
    """The same step from lightly's transform, heads and loss, fed by a standard DataLoader."""

    name = "lightly"

    def __init__(self, method: str, encoder: nn.Module, pixels: np.ndarray, batch: int,
                 views: tuple[torch.Tensor, torch.Tensor], workers: int,
                 precision: str = "fp32") -> None:
        from lightly.loss import NegativeCosineSimilarity, NTXentLoss
        from lightly.transforms import (
            BYOLTransform,
            BYOLView1Transform,
            BYOLView2Transform,
            SimCLRTransform,
        )

        self.method = method
        size = pixels.shape[1]
        if method == "simclr":
            transform = SimCLRTransform(input_size=size, cj_strength=0.5, gaussian_blur=0.0)
            self.model: nn.Module = _LightlySimCLR(encoder)
            self.criterion: nn.Module = NTXentLoss(temperature=0.5)
        else:
            transform = BYOLTransform(
                view_1_transform=BYOLView1Transform(input_size=size, gaussian_blur=0.0),
                view_2_transform=BYOLView2Transform(input_size=size, gaussian_blur=0.0),
            )
            self.model = _LightlyBYOL(encoder)
            self.criterion = NegativeCosineSimilarity()
        self.loader = torch.utils.data.DataLoader(
            _PILImages(pixels, transform), batch_size=batch, shuffle=True, drop_last=True,
            num_workers=workers)
        self.views = views
        self.precision = precision
        self.step = 0

    def _train_step(self, x0: torch.Tensor, x1: torch.Tensor, opt) -> None:
        with _autocast(self.precision):  # what a user adds to lightly's loop for bf16
            loss = self._loss(x0, x1)
        loss.backward()
        opt.step()
        opt.zero_grad()
        self.step += 1
        float(loss.detach())

    def _loss(self, x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
        model = self.model
        if self.method == "simclr":
            loss = self.criterion(model(x0), model(x1))
        else:
            from lightly.models.utils import update_momentum
            from lightly.utils.scheduler import cosine_schedule

            m = cosine_schedule(self.step, TOTAL_STEPS, 0.996, 1)
            update_momentum(model.backbone, model.backbone_momentum, m=m)
            update_momentum(model.projection_head, model.projection_head_momentum, m=m)
            p0, p1 = model(x0), model(x1)
            z0, z1 = model.forward_momentum(x0), model.forward_momentum(x1)
            loss = 0.5 * (self.criterion(p0, z1) + self.criterion(p1, z0))
        return loss

    def _optimizer(self) -> torch.optim.Optimizer:
        params = [p for p in self.model.parameters() if p.requires_grad]
        return torch.optim.AdamW(params, lr=LR, weight_decay=WEIGHT_DECAY)

    def end_to_end(self, steps: int) -> None:
        self.model.train()
        opt = self._optimizer()
        batches = iter(self.loader)
        for _ in range(steps):
            (x0, x1), _ = next(batches)
            self._train_step(x0, x1, opt)

    def model_step(self, steps: int) -> None:
        self.model.train()
        opt = self._optimizer()
        for _ in range(steps):
            self._train_step(*self.views, opt)

    def data_only(self, steps: int) -> None:
        batches = iter(self.loader)
        for _ in range(steps):
            next(batches)


# --------------------------------------------------------------------------- the measurement
def _images(arch: str, n: int) -> tuple[np.ndarray, torch.Tensor]:
    """``n`` images as uint8 (N, H, W, 3) pixels (lightly's PIL side) and float (N, 3, H, W).

    The ResNet-18 gets random 32x32 pixels (the content does not change the cost); the
    ConvNet gets the book's own images, the quick profile's data set at its image size.
    """
    if arch == "convnet":
        from minissl.data import load

        x = load(BOOK.image_dataset, "train", n=n).images
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        if x.shape[-1] != BOOK.image_size:
            x = torch.nn.functional.interpolate(x, size=BOOK.image_size, mode="bilinear")
        pixels = x.clamp(0, 1).mul(255).round().byte().permute(0, 2, 3, 1).contiguous().numpy()
    else:
        pixels = np.random.default_rng(0).integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)
    # Both sides see the same pixels: ours as floats in [0, 1], lightly's as PIL images.
    images = torch.from_numpy(pixels).permute(0, 3, 1, 2).float().div(255).contiguous()
    return pixels, images


def _timed(fn: Callable[[int], None], steps: int) -> float:
    t0 = time.perf_counter()
    fn(steps)
    return time.perf_counter() - t0


def measure(method: str, sides: tuple[str, ...], args: argparse.Namespace) -> dict:
    """Median images/s per (side, part) for one method, the sides interleaved A/B.

    With both sides, ``("speed-up", part)`` is the median over repetitions of lightly's time
    divided by minissl's (above 1: minissl is faster).
    """
    b = args.batch
    pixels, images = _images(args.backbone, 2 * b)  # 2b: a few different batches to draw
    size = images.shape[-1]
    gen = torch.Generator().manual_seed(0)
    views = (TwoViews(SimCLRAugment(size, generator=gen)) if method == "simclr"
             else BYOLAugment(size, generator=gen))(images[:b])

    runners = []
    for side in sides:
        torch.manual_seed(0)  # the same initial weights on both sides
        encoder = backbone(args.backbone, in_channels=3, width=args.width)
        if args.channels_last:
            encoder = encoder.to(memory_format=torch.channels_last)
        if side == "minissl":
            runners.append(Ours(method, encoder, images, b, views, args.precision))
        else:
            runners.append(Theirs(method, encoder, pixels, b, views, args.workers,
                                  args.precision))
    for r in runners:  # warm-up: first-call allocations, oneDNN kernel choice
        r.end_to_end(1)

    times: dict[tuple[str, str], list[float]] = {}
    for rep in range(args.repeats):
        order = runners if rep % 2 == 0 else runners[::-1]
        for part in PARTS:
            for r in order:
                fn = {"end to end": r.end_to_end, "model step": r.model_step,
                      "data + aug": r.data_only}[part]
                times.setdefault((r.name, part), []).append(_timed(fn, args.steps))
    rates = {key: b * args.steps / statistics.median(ts) for key, ts in times.items()}
    if len(runners) == 2:
        # The speed-up is the median of each repetition's own ratio: the two blocks of a
        # repetition run back to back, so a change in the machine's load between repetitions
        # (seen here: the same step taking 38 s, then 22 s) cancels out of it.
        for part in PARTS:
            pairs = zip(times[("lightly", part)], times[("minissl", part)])
            rates[("speed-up", part)] = statistics.median(t / o for t, o in pairs)
    return rates


def print_table(results: dict[str, dict], sides: tuple[str, ...]) -> None:
    both = len(sides) == 2
    label = max(8, *(len(k) + 2 for k in results))
    head = f"{'method':<{label}}{'part':<12}" + "".join(f"{s + ' img/s':>15}" for s in sides)
    print(head + (f"{'speed-up':>17}" if both else ""))
    print("-" * (len(head) + (17 if both else 0)))
    for method, rates in results.items():
        for part in PARTS:
            row = f"{method:<{label}}{part:<12}" + "".join(
                f"{rates[(s, part)]:>15.1f}" for s in sides)
            if both:
                row += f"{rates[('speed-up', part)]:>16.2f}x"
            print(row)


def _thread_counts(text: str) -> list[int]:
    try:
        counts = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        counts = []
    if not counts or any(c < 0 for c in counts):
        raise argparse.ArgumentTypeError(f"expected thread counts like 1 or 1,2; got {text!r}")
    return counts


def main(argv: list[str] | None = None) -> dict[str, dict]:
    """Measure, print the table (and the overall speed-up), return the rates.

    The result maps each method to its rates, or, with several thread counts, each
    ``"method, N threads"``.
    """
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--backbone", choices=BACKBONES, default="resnet18",
                    help="resnet18: the papers' CIFAR step; convnet: the book's quick-profile "
                         "ConvNet on its own data")
    ap.add_argument("--batch", type=int, default=None,
                    help="images per step (each gives two views); default 32 for the "
                         f"ResNet-18, the profile's {BOOK.batch_size} for the ConvNet")
    ap.add_argument("--steps", type=int, default=1, help="training steps per timed block")
    ap.add_argument("--repeats", type=int, default=3,
                    help="timed blocks per side and part; the median is reported")
    ap.add_argument("--threads", type=_thread_counts, default=None,
                    help="torch intra-op threads for both sides, or several (1,2) measured in "
                         "turn (0: torch's default); default 1 for the ResNet-18, 1,2 for the "
                         "ConvNet")
    ap.add_argument("--methods", default=",".join(METHODS), help="comma-separated: simclr,byol")
    ap.add_argument("--sides", default=",".join(SIDES),
                    help="comma-separated: minissl,lightly (lightly needs the bench extra)")
    ap.add_argument("--workers", type=int, default=0,
                    help="DataLoader workers on lightly's side (default 0: both sides then use "
                         "the same cores; workers > 0 start afresh in every timed block)")
    ap.add_argument("--width", type=int, default=None,
                    help="backbone width (default: 64, the standard ResNet-18; the profile's "
                         f"{BOOK.width} for the ConvNet)")
    ap.add_argument("--channels-last", action="store_true",
                    help="channels_last memory format for the backbone, on both sides")
    ap.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                    help="bf16: autocast on both sides (minissl: TrainConfig(precision='bf16'); "
                         "lightly: torch.autocast around its forward and loss)")
    ap.add_argument("--quick", action="store_true",
                    help="a smoke run in seconds: batch 8, width 8, 1 step, 1 repeat")
    args = ap.parse_args(argv)
    convnet = args.backbone == "convnet"
    args.batch = args.batch or (BOOK.batch_size if convnet else 32)
    args.width = args.width or (BOOK.width if convnet else 64)
    args.threads = args.threads or ([1, 2] if convnet else [1])
    if args.quick:
        args.batch, args.width, args.steps, args.repeats = 8, 8, 1, 1

    methods = tuple(m.strip().lower() for m in args.methods.split(",") if m.strip())
    sides = tuple(s.strip().lower() for s in args.sides.split(",") if s.strip())
    for given, valid, what in ((methods, METHODS, "--methods"), (sides, SIDES, "--sides")):
        wrong = [v for v in given if v not in valid]
        if wrong or not given:
            ap.error(f"{what}: unknown {wrong or 'empty list'}; use some of {list(valid)}")
    sides = tuple(s for s in SIDES if s in sides)  # minissl first in the table
    if "lightly" in sides and (missing := _lightly_missing()):
        ap.error(missing)

    load = ", ".join(f"{v:.1f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    network = (f"the quick profile's ConvNet (width {args.width}) on {BOOK.image_dataset}, "
               f"{BOOK.image_size}x{BOOK.image_size}" if convnet
               else f"CIFAR ResNet-18 (width {args.width}), 32x32")
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, load average {load} "
          "(1, 5, 15 min)")
    print(f"{network}, batch {args.batch} (two views each), {args.steps} step(s) x "
          f"{args.repeats} repeat(s), median"
          + (f"; lightly DataLoader workers: {args.workers}" if "lightly" in sides else "")
          + (", channels_last" if args.channels_last else "")
          + (", bf16 autocast" if args.precision == "bf16" else ""))
    results = {}
    for threads in args.threads:
        if threads > 0:
            torch.set_num_threads(threads)
        print(f"{torch.get_num_threads()} torch thread(s)", file=sys.stderr)
        for method in methods:
            t0 = time.perf_counter()
            key = (method if len(args.threads) == 1
                   else f"{method}, {threads} thread{'' if threads == 1 else 's'}")
            results[key] = measure(method, sides, args)
            print(f"  {key}: measured in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    print_table(results, sides)
    if len(sides) == 2:
        ratios = [rates[("speed-up", "end to end")] for rates in results.values()]
        overall = math.exp(sum(math.log(r) for r in ratios) / len(ratios))
        print(f"end-to-end speed-up: {overall:.2f}x")
    return results


if __name__ == "__main__":
    main()
