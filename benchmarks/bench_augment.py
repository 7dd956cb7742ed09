"""Two-view SimCLR augmentation of 32x32 RGB images: batched minissl vs per-image torchvision.

Both sides run the same recipe (SimCLR's CIFAR-10 setup, s = 0.5, no blur): random resized
crop to 32, horizontal flip, colour jitter (0.4, 0.4, 0.4, 0.1) with p = 0.8, grayscale with
p = 0.2. The baseline is the usual data-loader pipeline in one process, image by image:
ToPILImage -> RandomResizedCrop -> RandomHorizontalFlip -> RandomApply(ColorJitter) ->
RandomGrayscale -> ToTensor. Ours is ``TwoViews(SimCLRAugment(32))`` on a (B, 3, 32, 32) tensor.

By default ours runs on one CPU thread, like the baseline (on a busy shared machine torch's
intra-op threads also fight other processes for the cores); ``--threads 0`` uses torch's
default. Prints views per second (one view = one augmented 32x32 image) and the speed-up; asserts
nothing. Usage::

    python benchmarks/bench_augment.py [--n 2048] [--batch 512] [--device auto]
                                       [--repeats 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import time

import torch
from torchvision import transforms as T

from minissl.augment import SimCLRAugment, TwoViews
from minissl.utils import resolve_device


def best_rate(fn, n_views: int, repeats: int, sync=lambda: None) -> float:
    """Run ``fn`` once to warm up, then ``repeats`` times; return the best views/s."""
    fn()
    sync()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        best = min(best, time.perf_counter() - t0)
    return n_views / best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=2048, help="images per timed run")
    ap.add_argument("--batch", type=int, default=512, help="batch size of the batched version")
    ap.add_argument("--device", default="auto", help="auto | cpu | cuda (for ours)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch intra-op threads for ours on the CPU (default 1: one core against "
                         "the one-process baseline; 0: torch's default)")
    ap.add_argument("--baseline-n", type=int, default=None,
                    help="images for the per-image baseline (default: min(n, 1024))")
    args = ap.parse_args()

    device = resolve_device(args.device)
    if args.threads > 0 and device.type == "cpu":
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    images = torch.rand(args.n, 3, 32, 32)  # content does not change the cost of either side

    # ---- ours: batched, per-sample random, on the device
    two = TwoViews(SimCLRAugment(32, s=0.5))
    data = images.to(device)
    batches = data.split(args.batch)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def ours() -> None:
        for b in batches:
            two(b)

    ours_rate = best_rate(ours, 2 * args.n, args.repeats, sync)

    # ---- baseline: torchvision transforms applied image by image (PIL under the hood)
    s = 0.5
    per_image = T.Compose([
        T.ToPILImage(),
        T.RandomResizedCrop(32),
        T.RandomHorizontalFlip(),
        T.RandomApply([T.ColorJitter(0.8 * s, 0.8 * s, 0.8 * s, 0.2 * s)], p=0.8),
        T.RandomGrayscale(p=0.2),
        T.ToTensor(),
    ])
    nb = args.baseline_n or min(args.n, 1024)
    few = list(images[:nb])

    def baseline() -> None:
        for img in few:
            per_image(img)
            per_image(img)

    base_rate = best_rate(baseline, 2 * nb, args.repeats)

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {device}")
    print(f"minissl batched (B={args.batch}, {device}):  {ours_rate:12,.0f} views/s")
    print(f"torchvision per-image PIL (cpu):      {base_rate:12,.0f} views/s")
    print(f"speed-up:                             {ours_rate / base_rate:12.1f}x")


if __name__ == "__main__":
    main()
