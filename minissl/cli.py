"""``python -m minissl``: what a user runs outside a notebook.

    python -m minissl info                            # profile, device, versions, data sets
    python -m minissl download cifar10 [--root DIR]   # fetch a data set for the full profile
    python -m minissl train simclr --dataset cifar10 --backbone resnet18 --epochs 200 \\
        --checkpoint-dir runs/simclr
        # pretrain any image method; prints loss, images/s, peak GPU memory and kNN accuracy
        # every epoch; --checkpoint-dir makes a stopped run resume (the same command again;
        # other settings are refused, --fresh starts afresh; --checkpoint-every N saves
        # every N steps); Ctrl-C or SIGTERM prints where the checkpoint is, on one line
    python -m minissl evaluate runs/simclr            # kNN and 10-labels-per-class probe
    python -m minissl bench --epochs 5 --seeds 0 1    # every image method, one budget, one table

Defaults come from the active profile (``MINISSL_PROFILE``, or ``--profile``); every one can
be overridden. ``python -m minissl COMMAND --help`` lists a command's options.
"""

from __future__ import annotations

import argparse
import difflib
import sys

import torch


def _info(args: argparse.Namespace) -> int:
    import minissl
    from minissl import data, profiles
    from minissl.utils import resolve_device

    profile = profiles.current()
    print(f"minissl {minissl.__version__} | torch {torch.__version__}")
    print(profile.describe())
    # `train` gives every recipe method the profile's ssl_epochs, the baseline its epochs.
    print(f"train: {profile.ssl_epochs} epochs for every self-supervised method, "
          f"{profile.epochs} for Supervised (--epochs overrides), batch {profile.batch_size}")
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


# Methods `train` can build: every recipe (the image methods) and the supervised baseline.
_TEXT_METHODS = ("BERT", "GPT")


def _method_class(name: str):
    from minissl import methods

    key = name.replace("_", "").replace("-", "").lower()
    by_key = {n.lower(): n for n in methods.available()}
    if key not in by_key:
        close = difflib.get_close_matches(key, list(by_key), n=1)
        hint = f"; did you mean {by_key[close[0]]!r}?" if close else ""
        raise SystemExit(f"unknown method {name!r}; choose one of {_image_methods()} "
                         f"(any case; '_' and '-' are ignored){hint}")
    if by_key[key] in _TEXT_METHODS:
        raise SystemExit(f"{by_key[key]} is a language model (chapter 8 trains it); `train` "
                         f"pretrains image methods: {_image_methods()}")
    return getattr(methods, by_key[key])


def _image_methods() -> list[str]:
    from minissl import recipes

    return sorted([recipes.get(n).method for n in recipes.available()] + ["Supervised"])


def _check_dataset(name: str) -> str:
    from minissl import data

    if name not in data.available():
        raise SystemExit(f"unknown data set {name!r}; choose one of {list(data.available())} "
                         "(see `python -m minissl info`)")
    return name


def _parse_value(text: str):
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return {"true": True, "false": False, "none": None}.get(text.lower(), text)


# Constructor arguments `train` fills in itself; they cannot be given as text.
_BUILT_ARGS = ("encoder", "data", "augment", "in_channels", "image_size", "channels")


def _method_args(cls, pairs: list[str]) -> dict:
    """``--method-arg KEY=VALUE`` pairs, checked against ``cls``'s constructor arguments."""
    import inspect

    params = {k: v for k, v in list(inspect.signature(cls.__init__).parameters.items())[1:]
              if k not in _BUILT_ARGS and v.kind not in (v.VAR_POSITIONAL, v.VAR_KEYWORD)}
    listed = ", ".join(f"{k}={v.default!r}" if v.default is not v.empty else k
                       for k, v in params.items()) or "none"
    out = {}
    for text in pairs:
        key, value = _parse_value_pair(text)
        if key not in params:
            close = difflib.get_close_matches(key, list(params), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise SystemExit(f"--method-arg {text}: {cls.__name__} has no argument {key!r}."
                             f"{hint} Its arguments (with defaults): {listed}")
        default = params[key].default
        want = type(default) if default is not params[key].empty and default is not None \
            else None
        if want is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if want is not None and not isinstance(value, want) or (
                want is int and isinstance(value, bool)):
            kind = {bool: "true or false", int: "a whole number", float: "a number",
                    str: "a word"}.get(want, want.__name__)
            raise SystemExit(f"--method-arg {text}: {cls.__name__}'s {key} takes {kind} "
                             f"(default {default!r}); got {value!r}")
        out[key] = value
    return out


def _build_method(cls, train, *, backbone: str, width: int, seed: int, lr: float | None,
                  extra: dict):
    """The method as `train` builds it (its recipe when it has one) and its TrainConfig or lr."""
    from minissl import recipes

    if cls.__name__.lower() in recipes.RECIPES:  # a tested recipe: lr, arguments, augmentation
        return recipes.build(cls.__name__, train, backbone=backbone, width=width, seed=seed,
                             lr=lr, **extra)
    if cls.__name__ != "Supervised":
        raise SystemExit(f"`train` cannot build {cls.__name__} from the command line (it needs "
                         f"more than images); use it from Python. Image methods: "
                         f"{_image_methods()}")
    torch.manual_seed(seed)
    encoder = recipes.make_encoder(train, backbone=backbone, width=width)
    extra = {"num_classes": train.num_classes, **extra}
    return cls(encoder, **extra), None


RUN_FILE = "run.json"  # written by `train` next to its checkpoint; read by `evaluate`


def _train(args: argparse.Namespace) -> int:
    import dataclasses
    import json
    import time
    from pathlib import Path

    from minissl import data, evaluate, profiles, recipes
    from minissl.train import TrainConfig, check_checkpoint, fit

    P = profiles.current()
    cls = _method_class(args.method)
    extra = _method_args(cls, args.method_arg)  # checked before the data loads
    name = _check_dataset(args.dataset or P.image_dataset)
    # The profile's image count belongs to the profile's data set; another one is used whole.
    n_train = args.n_train if args.n_train is not None else (
        P.n_train if name == P.image_dataset else None)
    # ... and so does its image size (16 px shapes in the quick profile).
    sized = {"size": P.image_size} if name == P.image_dataset else {}
    download = args.download or P.download
    train = data.load(name, "train", n=n_train, root=args.data_root, download=download, **sized)
    test = data.load(name, "test", n=args.eval_n, root=args.data_root, download=download,
                     **sized)
    probe_train = train.subset(torch.arange(min(len(train), args.eval_n * 5)))
    print(train.describe())
    arch, width = (args.backbone or P.backbone).lower(), args.width or P.width
    method, recipe_cfg = _build_method(cls, train, backbone=arch, width=width, seed=args.seed,
                                       lr=args.lr, extra=extra)
    if args.channels_last:
        method = method.to(memory_format=torch.channels_last)
    batch_size = args.batch_size or P.batch_size
    per_epoch = len(train) // batch_size
    clock = {"t": time.perf_counter(), "step": 0}

    def report(m, step):
        now = time.perf_counter()
        images_per_s = (step - clock["step"]) * batch_size / max(now - clock["t"], 1e-9)
        features = recipes.backbone_of(m)
        knn = evaluate.knn_accuracy(*evaluate.extract_features(features, probe_train),
                                    *evaluate.extract_features(features, test))
        mem = (f", peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB"
               if torch.cuda.is_available() else "")
        print(f"epoch {step / per_epoch:6.2f}  step {step:6d}  {images_per_s:9.0f} images/s"
              f"  kNN {knn:.3f}{mem}", flush=True)
        clock["t"], clock["step"] = time.perf_counter(), step
        return {"knn": knn, "images_per_s": images_per_s}

    base = recipe_cfg or TrainConfig(epochs=P.epochs, lr=args.lr or 1e-3, weight_decay=1e-4)
    cfg = dataclasses.replace(
        base, epochs=args.epochs or base.epochs, batch_size=batch_size,
        optimizer=args.optimizer,
        weight_decay=base.weight_decay if args.weight_decay is None else args.weight_decay,
        warmup_steps=base.warmup_steps if args.warmup_steps is None else args.warmup_steps,
        device=args.device, precision=args.precision,
        compile=args.compile, seed=args.seed, checkpoint_dir=args.checkpoint_dir,
        checkpoint_every=args.checkpoint_every, resume=not args.fresh,
        progress=not args.no_progress, eval_every=max(1, per_epoch * args.eval_every),
        callback=report, desc=cls.__name__,
    )
    if args.checkpoint_dir:  # what `evaluate` needs to rebuild the method around the weights
        # Refuse a foreign or damaged checkpoint before anything is written next to it.
        check_checkpoint(method, train, cfg)
        folder = Path(args.checkpoint_dir)
        (folder / RUN_FILE).write_text(json.dumps({
            "method": cls.__name__, "dataset": name, "n_train": len(train),
            "image_size": int(train.images.shape[-1]),
            "backbone": arch, "width": width, "seed": args.seed, "method_args": extra,
            "profile": P.name, "data_root": args.data_root,
        }, indent=1))
    history = fit(method, train, cfg)
    print(f"done: {len(history)} logged steps, final loss {history.last('loss'):.4f}, "
          f"kNN {history.last('knn'):.3f}, {history.seconds:.1f} s of training")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from minissl import data, profiles, recipes
    from minissl.evaluate import evaluate_encoder
    from minissl.train import CHECKPOINT_NAME, load_checkpoint
    from minissl.utils import MinisslError, resolve_device

    P = profiles.current()
    path = Path(args.checkpoint)
    file = path / CHECKPOINT_NAME if path.is_dir() else path
    if not file.exists():
        raise SystemExit(f"no checkpoint at {file}; make one with `python -m minissl train "
                         f"METHOD --checkpoint-dir {path}` (it writes {CHECKPOINT_NAME} there)")
    try:
        state = load_checkpoint(file)
    except MinisslError as err:
        cause = type(err.__cause__).__name__ if err.__cause__ else "unreadable"
        raise SystemExit(f"cannot read {file}: it is damaged or not a checkpoint of `python -m "
                         f"minissl train` ({cause}). Give another checkpoint, or train again "
                         "with --checkpoint-dir") from err
    if not isinstance(state, dict) or "model" not in state:
        raise SystemExit(f"{file} is not a checkpoint of `python -m minissl train` (no 'model' "
                         "entry); give the folder passed as --checkpoint-dir")
    run_file = file.parent / RUN_FILE
    meta = json.loads(run_file.read_text()) if run_file.exists() else {}
    written_by = meta.get("method") or (state.get("config") or {}).get("desc")
    if args.method:
        asked = _method_class(args.method).__name__
        if written_by and asked != written_by:
            raise SystemExit(f"{file} was written by `train {written_by}`, not {asked}; "
                             f"leave out --method, or give the checkpoint of a {asked} run")
        written_by = asked
    if not written_by:
        raise SystemExit(f"cannot tell which method wrote {file} (no {RUN_FILE} next to it); "
                         "pass --method and the --dataset, --backbone and --width it used")
    cls = _method_class(written_by)
    name = _check_dataset(args.dataset or meta.get("dataset") or P.image_dataset)
    n_train = args.n_train if args.n_train is not None else meta.get("n_train")
    root = args.data_root or meta.get("data_root")
    size = meta.get("image_size") or (P.image_size if name == P.image_dataset else None)
    sized = {"size": size} if size else {}
    train = data.load(name, "train", n=n_train, root=root, download=args.download, **sized)
    test = data.load(name, "test", n=args.eval_n, root=root, download=args.download, **sized)
    arch = (args.backbone or meta.get("backbone") or P.backbone).lower()
    width = args.width or meta.get("width") or P.width
    method, _ = _build_method(cls, train, backbone=arch, width=width,
                              seed=meta.get("seed", 0), lr=None,
                              extra=meta.get("method_args", {}))
    try:
        method.load_state_dict(state["model"])
    except RuntimeError as err:
        lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
        first = (lines[1] if len(lines) > 1 else lines[0])[:300]
        raise SystemExit(
            f"the weights in {file} do not fit {cls.__name__} with backbone={arch}, "
            f"width={width} on {name} ({first}). Pass the --method, --backbone, --width and "
            f"--dataset the checkpoint was trained with.") from err
    method.to(resolve_device(args.device)).eval()
    encoder = recipes.backbone_of(method)
    print(train.describe())
    print(test.describe())
    print(f"{cls.__name__} from {file} (step {state.get('step', '?')}), backbone {arch}")
    scores = evaluate_encoder(encoder, train, test, labels_per_class=args.labels_per_class,
                              seed=args.seed, draws=args.label_draws)
    print(f"kNN (k=20, all {len(train)} training labels): {scores['knn']:.3f}")
    draws = f", mean of {args.label_draws} draws" if args.label_draws > 1 else ""
    print(f"linear probe ({args.labels_per_class} labels per class{draws}): "
          f"{scores['linear']:.3f}")
    return 0


def _bench(args: argparse.Namespace) -> int:
    from minissl import bench

    try:
        names = bench.method_names(args.methods)
    except ValueError as err:
        raise SystemExit(f"--methods: {err}") from err
    if args.dataset:
        _check_dataset(args.dataset)
    result = bench.run(
        names, dataset=args.dataset, backbone=args.backbone, epochs=args.epochs,
        seeds=args.seeds, out_dir=args.out, progress=not args.no_progress,
        resume=not args.fresh, n_train=args.n_train, n_test=args.n_test,
        image_size=args.image_size, width=args.width, batch_size=args.batch_size,
        labels_per_class=args.labels_per_class, label_draws=args.label_draws,
        data_root=args.data_root, download=args.download)
    print()
    print(result.markdown.read_text())
    print(f"trained {len(result.trained)} run(s), reused {len(result.reused)} finished one(s)")
    print(f"wrote {result.csv}, {result.markdown} and {result.plot}")
    return 0


def _positive(text: str) -> int:
    """argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def _natural(text: str) -> int:
    """argparse type: a whole number of at least 0."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    """argparse type: a finite number above 0."""
    import math

    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return value


def _parse_value_pair(text: str):
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise SystemExit(f"--method-arg expects KEY=VALUE (e.g. temperature=0.2), got {text!r}")
    return key.strip(), _parse_value(value.strip())


def _parser() -> argparse.ArgumentParser:
    from minissl.data import available
    from minissl.nn import BACKBONES
    from minissl.profiles import PROFILES

    DATASETS = ", ".join(available())

    profile = argparse.ArgumentParser(add_help=False)
    profile.add_argument("--profile", choices=sorted(PROFILES),
                         help="budgets and defaults (default: $MINISSL_PROFILE, else 'full' "
                              "with a GPU and 'quick' without)")
    parser = argparse.ArgumentParser(
        prog="python -m minissl",
        description="minissl from the command line: pretrain, evaluate and benchmark "
                    "self-supervised methods.",
        epilog="Run `python -m minissl COMMAND --help` for a command's options. Examples:\n"
               "  python -m minissl train simclr --epochs 5 --checkpoint-dir runs/simclr\n"
               "  python -m minissl evaluate runs/simclr\n"
               "  python -m minissl bench --methods simclr,byol,mae --epochs 5 --seeds 0 1",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("info", help="show the profile, device and data sets",
                   parents=[profile]).set_defaults(run=_info)
    dl = sub.add_parser("download", help="download a data set for the full profile")
    dl.add_argument("name", help="cifar10, stl10, mnist, wikitext2 or wikitext103")
    dl.add_argument("--root", default=None, help="where to keep it (default: $MINISSL_DATA)")
    dl.add_argument("--splits", nargs="+", default=["train", "test"])
    dl.set_defaults(run=_download)
    tr = sub.add_parser("train", help="pretrain a method and report kNN accuracy every epoch",
                        parents=[profile])
    tr.add_argument("method", help="a name from minissl.methods.available(), any case")
    tr.add_argument("--dataset", help=f"one of {DATASETS} (default: the profile's)")
    tr.add_argument("--n-train", type=_positive, default=None,
                    help="training images (default: the profile's for its data set, else all)")
    tr.add_argument("--eval-n", type=_positive, default=1000,
                    help="test images for the kNN score")
    tr.add_argument("--eval-every", type=_positive, default=1, help="epochs between kNN scores")
    tr.add_argument("--backbone", type=str.lower, choices=BACKBONES,
                    help="the encoder (default: the profile's)")
    tr.add_argument("--width", type=_positive, default=None,
                    help="backbone width (default: profile)")
    tr.add_argument("--epochs", type=_positive, default=None,
                    help="passes over the data (default: the profile's; `info` shows them)")
    tr.add_argument("--batch-size", type=_positive, default=None)
    tr.add_argument("--lr", type=_positive_float, default=None,
                    help="peak learning rate (default: the method's recipe, else 1e-3)")
    tr.add_argument("--optimizer", default="adamw", choices=["adamw", "adam", "sgd"])
    tr.add_argument("--weight-decay", type=float, default=None,
                    help="default: the method's recipe (1e-4; 0.05 for MAE)")
    tr.add_argument("--warmup-steps", type=_natural, default=None,
                    help="default: the method's recipe (0; 5%% of the steps for MAE)")
    tr.add_argument("--device", default="auto")
    tr.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"],
                    help="auto: bf16 on GPUs, fp32 on CPUs")
    tr.add_argument("--compile", action="store_true", help="torch.compile the training step")
    tr.add_argument("--channels-last", action="store_true", help="NHWC weights (GPU speed-up)")
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--checkpoint-dir", default=None,
                    help="save here (last.pt and run.json); a rerun with the same settings "
                         "resumes, one with other settings is refused; `evaluate` reads it")
    tr.add_argument("--checkpoint-every", type=_positive, default=None, metavar="STEPS",
                    help="optimizer steps between checkpoints (default: once an epoch)")
    tr.add_argument("--fresh", action="store_true",
                    help="start afresh, overwriting the checkpoint in --checkpoint-dir")
    tr.add_argument("--data-root", default=None)
    tr.add_argument("--download", action="store_true")
    tr.add_argument("--no-progress", action="store_true")
    tr.add_argument("--method-arg", action="append", default=[], metavar="KEY=VALUE",
                    help="extra constructor argument of the method, e.g. temperature=0.2")
    tr.set_defaults(run=_train)
    ev = sub.add_parser("evaluate", parents=[profile],
                        help="score a checkpoint of `train` with kNN and a few-label probe")
    ev.add_argument("checkpoint", help="the --checkpoint-dir of a `train` run, or its last.pt")
    ev.add_argument("--method", help="check that the checkpoint is of this method (needed only "
                                     "when run.json is missing)")
    ev.add_argument("--dataset", help=f"one of {DATASETS} (default: the one it was trained on)")
    ev.add_argument("--n-train", type=int, default=None,
                    help="training images for kNN and the probe (default: as in training)")
    ev.add_argument("--eval-n", type=int, default=None, help="test images (default: all)")
    ev.add_argument("--labels-per-class", type=int, default=10,
                    help="labelled training images per class of the linear probe")
    ev.add_argument("--label-draws", type=_positive, default=1,
                    help="draws of the labelled images; the probe's score is their mean")
    ev.add_argument("--backbone", type=str.lower, choices=BACKBONES,
                    help="default: as in training")
    ev.add_argument("--width", type=int, default=None, help="default: as in training")
    ev.add_argument("--seed", type=int, default=0, help="seed of the labelled images' choice")
    ev.add_argument("--device", default="auto")
    ev.add_argument("--data-root", default=None)
    ev.add_argument("--download", action="store_true")
    ev.set_defaults(run=_evaluate)
    be = sub.add_parser("bench", parents=[profile],
                        help="pretrain every image method at one budget; write a table and plot")
    be.add_argument("--methods", nargs="+", default=None, metavar="NAME",
                    help="recipe names, space- or comma-separated (default: all 13 image "
                         "methods; see minissl.recipes.available())")
    be.add_argument("--dataset", help=f"one of {DATASETS} (default: the profile's)")
    be.add_argument("--backbone", type=str.lower, choices=BACKBONES,
                    help="every method's encoder (default: the profile's; MAE always a ViT)")
    be.add_argument("--epochs", type=int, default=None,
                    help="pretraining epochs of every method (default: the profile's)")
    be.add_argument("--seeds", type=int, nargs="+", default=[0],
                    help="one run per seed; several give mean ± std (default: 0)")
    be.add_argument("--out", default="bench-results",
                    help="folder of results.csv/.md/.png and of runs/ (finished runs)")
    be.add_argument("--n-train", type=int, default=None, help="default: the profile's")
    be.add_argument("--n-test", type=int, default=None, help="default: the profile's")
    be.add_argument("--image-size", type=int, default=None, help="resize the images")
    be.add_argument("--width", type=int, default=None, help="backbone width (default: profile)")
    be.add_argument("--batch-size", type=int, default=None, help="default: the profile's")
    be.add_argument("--labels-per-class", type=int, default=None,
                    help="labels per class of the linear probe (default: 10)")
    be.add_argument("--label-draws", type=_positive, default=1,
                    help="draws of the labelled images per run; the probe's score is their mean")
    be.add_argument("--data-root", default=None)
    be.add_argument("--download", action="store_true")
    be.add_argument("--no-progress", action="store_true")
    be.add_argument("--fresh", action="store_true",
                    help="train every method again instead of reusing finished runs")
    be.set_defaults(run=_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; ``argv`` defaults to the command line.

    From the command line (``argv`` is None) a minissl error or a bad value prints its
    message without a traceback (set ``MINISSL_DEBUG=1`` to see it); called with ``argv``,
    as tests do, the exception is raised.

    Example:
        >>> main(["bench", "--methods", "simclrr"])
        Traceback (most recent call last):
        ...
        SystemExit: --methods: no recipe for method 'simclrr'. Did you mean 'simclr'? ...
    """
    import os

    from minissl.utils import MinisslError

    args = _parser().parse_args(argv)
    if getattr(args, "profile", None):
        from minissl import profiles

        profiles.use(args.profile)
    if argv is not None or os.environ.get("MINISSL_DEBUG"):
        return args.run(args)
    import signal

    received = []

    def terminate(signum, frame):  # SIGTERM stops like Ctrl-C: one line, no traceback
        received.append(signum)
        raise KeyboardInterrupt(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, terminate)
    try:
        return args.run(args)
    except (MinisslError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as err:
        print(_interrupted(err, sys.argv[1:]), file=sys.stderr, flush=True)
        return 128 + (received[0] if received else signal.SIGINT)


def _interrupted(err: KeyboardInterrupt, argv: list[str]) -> str:
    """The one line printed when a command is stopped: where things are, how to go on."""
    import shlex

    from minissl.train import TrainingInterrupted

    again = "python -m minissl " + shlex.join([a for a in argv if a != "--fresh"])
    if isinstance(err, TrainingInterrupted) and err.checkpoint is not None:
        return (f"stopped at step {err.step}; the last checkpoint (step {err.saved_step}) is "
                f"{err.checkpoint}; resume with: {again}")
    if isinstance(err, TrainingInterrupted):
        return f"stopped at step {err.step}; {str(err).split(': ', 1)[-1]}"
    return "stopped before training began; nothing was saved"


if __name__ == "__main__":
    sys.exit(main())
