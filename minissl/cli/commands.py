"""The commands of ``python -m minissl``: info, download, train, evaluate and bench."""

from __future__ import annotations

import argparse

import torch

from minissl.cli.args import check_dataset, image_methods, method_args, method_class

RUN_FILE = "run.json"  # written by `train` next to its checkpoint; read by `evaluate`


def run_info(args: argparse.Namespace) -> int:
    import minissl
    from minissl import data, profiles, recipes
    from minissl.utils import resolve_device

    profile = profiles.current()
    print(f"minissl {minissl.__version__} | torch {torch.__version__}")
    print(profile.describe())
    # `train` gives every recipe method the profile's ssl_epochs, the others its epochs.
    others = ", ".join(name for name, recipe in image_methods().items() if not recipe)
    print(f"train: {profile.ssl_epochs} epochs for every self-supervised method, "
          f"{profile.epochs} for {others} (--epochs overrides), batch {profile.batch_size}"
          + "".join(f" ({method}: {size})"
                    for method, size in recipes.own_batch_sizes(profile=profile).items()))
    print(f"device: {resolve_device(profile.device)}")
    print("data sets:")
    for name, description in data.available().items():
        print(f"  {name:10s} {description}")
    return 0


def run_download(args: argparse.Namespace) -> int:
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


def make_method(cls, train, *, backbone: str, width: int, seed: int, lr: float | None,
                extra: dict):
    """The method as `train` builds it (its recipe when it has one) and its TrainConfig or None."""
    from minissl import recipes
    from minissl.methods.setting import Setting, build_method

    if cls.__name__.lower() in recipes.RECIPES:  # a tested recipe: lr, arguments, augmentation
        return recipes.build(cls.__name__, train, backbone=backbone, width=width, seed=seed,
                             lr=lr, **extra)
    if cls.__name__ not in image_methods():
        raise SystemExit(f"`train` cannot build {cls.__name__} from the command line (it needs "
                         f"more than images); use it from Python. Image methods: "
                         f"{list(image_methods())}")
    torch.manual_seed(seed)
    encoder = recipes.make_encoder(train, backbone=backbone, width=width)
    return build_method(cls, encoder, Setting(train, seed=seed, width=width), **extra), None


def run_train(args: argparse.Namespace) -> int:
    import dataclasses
    import json
    import time
    from pathlib import Path

    from minissl import data, evaluate, profiles, recipes
    from minissl.train import CHECKPOINT_NAME, TrainConfig, check_checkpoint, fit

    P = profiles.current()
    cls = method_class(args.method)
    extra = method_args(cls, args.method_arg)  # checked before the data loads
    name = check_dataset(args.dataset or P.image_dataset)
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
    method, recipe_cfg = make_method(cls, train, backbone=arch, width=width, seed=args.seed,
                                     lr=args.lr, extra=extra)
    if args.channels_last:
        method = method.to(memory_format=torch.channels_last)
    # the recipe's batch size (recipes.batch_size_of) unless --batch-size is given
    batch_size = args.batch_size or (recipe_cfg.batch_size if recipe_cfg else P.batch_size)
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
        if args.fresh:  # asked to start afresh: the old run's weights must not outlive run.json
            (folder / CHECKPOINT_NAME).unlink(missing_ok=True)
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


def run_evaluate(args: argparse.Namespace) -> int:
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
        asked = method_class(args.method).__name__
        if written_by and asked != written_by:
            raise SystemExit(f"{file} was written by `train {written_by}`, not {asked}; "
                             f"leave out --method, or give the checkpoint of a {asked} run")
        written_by = asked
    if not written_by:
        raise SystemExit(f"cannot tell which method wrote {file} (no {RUN_FILE} next to it); "
                         "pass --method and the --dataset, --backbone and --width it used")
    cls = method_class(written_by)
    name = check_dataset(args.dataset or meta.get("dataset") or P.image_dataset)
    n_train = args.n_train if args.n_train is not None else meta.get("n_train")
    root = args.data_root or meta.get("data_root")
    size = meta.get("image_size") or (P.image_size if name == P.image_dataset else None)
    sized = {"size": size} if size else {}
    train = data.load(name, "train", n=n_train, root=root, download=args.download, **sized)
    test = data.load(name, "test", n=args.eval_n, root=root, download=args.download, **sized)
    arch = (args.backbone or meta.get("backbone") or P.backbone).lower()
    width = args.width or meta.get("width") or P.width
    method, _ = make_method(cls, train, backbone=arch, width=width, seed=meta.get("seed", 0),
                            lr=None, extra=meta.get("method_args", {}))
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


def run_bench(args: argparse.Namespace) -> int:
    from minissl import bench

    try:
        names = bench.method_names(args.methods)
    except ValueError as err:
        raise SystemExit(f"--methods: {err}") from err
    if args.dataset:
        check_dataset(args.dataset)
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
