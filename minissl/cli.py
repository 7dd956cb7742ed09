"""``python -m minissl``: what a user runs outside a notebook.

    python -m minissl info                            # profile, device, versions, data sets
    python -m minissl download cifar10 [--root DIR]   # fetch a data set for the full profile
    python -m minissl train simclr --dataset cifar10 --backbone resnet18 --epochs 200
        # pretrain any method of minissl.methods; prints loss, images/s, peak GPU memory and
        # kNN accuracy every epoch; --checkpoint-dir makes a stopped run resume

Defaults come from the active profile (``MINISSL_PROFILE``); every one can be overridden.
"""

from __future__ import annotations

import argparse
import sys

import torch


def _info(args: argparse.Namespace) -> int:
    import minissl
    from minissl import data, profiles
    from minissl.utils import resolve_device

    profile = profiles.current()
    print(f"minissl {minissl.__version__} | torch {torch.__version__}")
    print(profile.describe())
    print(f"device: {resolve_device(profile.device)}")
    print("data sets:")
    for name, description in data.available().items():
        print(f"  {name:10s} {description}")
    return 0


def _download(args: argparse.Namespace) -> int:
    from minissl import data

    if args.name in data.text_corpora():  # a text corpus: fetched, then read once to check it
        for split in args.splits:
            text = data.text_corpus(args.name, split, root=args.root, download=True)
            print(f"{args.name}/{split}: {len(text):,} characters, {len(text.split()):,} words")
        return 0
    if args.name not in data.available():
        raise SystemExit(f"unknown data set {args.name!r}; image data sets: "
                         f"{list(data.available())}; text corpora: {list(data.text_corpora())}")
    for split in args.splits:
        ds = data.load(args.name, split=split, root=args.root, download=True)
        print(ds.describe())
    return 0


def _method_class(name: str):
    from minissl import methods

    key = name.replace("_", "").replace("-", "").lower()
    by_key = {n.lower(): n for n in methods.available()}
    if key not in by_key:
        raise SystemExit(f"unknown method {name!r}; choose one of {methods.available()}")
    return getattr(methods, by_key[key])


def _parse_value(text: str):
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)


def _train(args: argparse.Namespace) -> int:
    import time

    from minissl import data, evaluate, profiles, recipes
    from minissl.train import TrainConfig, fit

    P = profiles.current()
    cls = _method_class(args.method)
    name = args.dataset or P.image_dataset
    # The profile's image count belongs to the profile's data set; another one is used whole.
    n_train = args.n_train if args.n_train is not None else (
        P.n_train if name == P.image_dataset else None)
    train = data.load(name, "train", n=n_train, root=args.data_root, download=args.download)
    test = data.load(name, "test", n=args.eval_n, root=args.data_root, download=args.download)
    probe_train = train.subset(torch.arange(min(len(train), args.eval_n * 5)))
    print(train.describe())
    extra = dict(_parse_value_pair(kv) for kv in args.method_arg)
    recipe = recipes.RECIPES.get(cls.__name__.lower())
    if recipe is not None:  # a tested recipe: its learning rate, arguments and augmentation
        method, recipe_cfg = recipes.build(
            cls.__name__, train, backbone=args.backbone, width=args.width, seed=args.seed,
            lr=args.lr, **extra)
        lr = recipe_cfg.lr
    else:
        encoder = recipes.make_encoder(train, backbone=args.backbone, width=args.width)
        method, lr = cls(encoder, encoder.feature_dim, **extra), args.lr or 1e-3
    if args.channels_last:
        method = method.to(memory_format=torch.channels_last)
    batch_size = args.batch_size or P.batch_size
    per_epoch = len(train) // batch_size
    clock = {"t": time.perf_counter(), "step": 0}

    def report(m, step):
        now = time.perf_counter()
        images_per_s = (step - clock["step"]) * batch_size / max(now - clock["t"], 1e-9)
        knn = evaluate.knn_accuracy(*evaluate.extract_features(m.encoder, probe_train),
                                    *evaluate.extract_features(m.encoder, test))
        mem = (f", peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB"
               if torch.cuda.is_available() else "")
        print(f"epoch {step / per_epoch:6.2f}  step {step:6d}  {images_per_s:9.0f} images/s"
              f"  kNN {knn:.3f}{mem}", flush=True)
        clock["t"], clock["step"] = time.perf_counter(), step
        return {"knn": knn, "images_per_s": images_per_s}

    cfg = TrainConfig(
        epochs=args.epochs or (P.ssl_epochs if recipe else P.epochs), batch_size=batch_size,
        lr=lr,
        optimizer=args.optimizer, weight_decay=args.weight_decay,
        warmup_steps=args.warmup_steps, device=args.device, precision=args.precision,
        compile=args.compile, seed=args.seed, checkpoint_dir=args.checkpoint_dir,
        progress=not args.no_progress, eval_every=max(1, per_epoch * args.eval_every),
        callback=report, desc=cls.__name__,
    )
    history = fit(method, train, cfg)
    print(f"done: {len(history)} logged steps, final loss {history.last('loss'):.4f}, "
          f"kNN {history.last('knn'):.3f}, {history.seconds:.1f} s of training")
    return 0


def _parse_value_pair(text: str):
    if "=" not in text:
        raise SystemExit(f"--method-arg expects key=value, got {text!r}")
    key, value = text.split("=", 1)
    return key, _parse_value(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m minissl", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="show the profile, device and data sets").set_defaults(run=_info)
    dl = sub.add_parser("download", help="download a data set for the full profile")
    dl.add_argument("name", help="cifar10, stl10, mnist, wikitext2 or wikitext103")
    dl.add_argument("--root", default=None, help="where to keep it (default: $MINISSL_DATA)")
    dl.add_argument("--splits", nargs="+", default=["train", "test"])
    dl.set_defaults(run=_download)
    tr = sub.add_parser("train", help="pretrain a method and report kNN accuracy every epoch")
    tr.add_argument("method", help="a name from minissl.methods.available(), any case")
    tr.add_argument("--dataset", help="default: the profile's image data set")
    tr.add_argument("--n-train", type=int, default=None,
                    help="training images (default: the profile's for its data set, else all)")
    tr.add_argument("--eval-n", type=int, default=1000, help="test images for the kNN score")
    tr.add_argument("--eval-every", type=int, default=1, help="epochs between kNN scores")
    tr.add_argument("--backbone", help="convnet, resnet18 or vit_tiny (default: profile)")
    tr.add_argument("--width", type=int, default=None, help="backbone width (default: profile)")
    tr.add_argument("--epochs", type=int, default=None)
    tr.add_argument("--batch-size", type=int, default=None)
    tr.add_argument("--lr", type=float, default=None,
                    help="peak learning rate (default: the method's recipe, else 1e-3)")
    tr.add_argument("--optimizer", default="adamw")
    tr.add_argument("--weight-decay", type=float, default=1e-4)
    tr.add_argument("--warmup-steps", type=int, default=0)
    tr.add_argument("--device", default="auto")
    tr.add_argument("--precision", default="auto", help="auto (bf16 on GPUs), fp32, bf16, fp16")
    tr.add_argument("--compile", action="store_true", help="torch.compile the training step")
    tr.add_argument("--channels-last", action="store_true", help="NHWC weights (GPU speed-up)")
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--checkpoint-dir", default=None, help="save here; a rerun resumes")
    tr.add_argument("--data-root", default=None)
    tr.add_argument("--download", action="store_true")
    tr.add_argument("--no-progress", action="store_true")
    tr.add_argument("--method-arg", action="append", default=[], metavar="KEY=VALUE",
                    help="extra constructor argument of the method, e.g. temperature=0.2")
    tr.set_defaults(run=_train)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
