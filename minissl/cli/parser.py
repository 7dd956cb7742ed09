"""The argument parser of ``python -m minissl``: every command and option, with its help."""

from __future__ import annotations

import argparse

from minissl.cli import commands
from minissl.cli.args import at_least

positive, natural = at_least(1), at_least(0)  # argparse types: whole numbers >= 1, >= 0


def make_parser() -> argparse.ArgumentParser:
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
                   parents=[profile]).set_defaults(run=commands.run_info)
    dl = sub.add_parser("download", help="download a data set for the full profile")
    dl.add_argument("name", help="cifar10, stl10, mnist, wikitext2 or wikitext103")
    dl.add_argument("--root", default=None, help="where to keep it (default: $MINISSL_DATA)")
    dl.add_argument("--splits", nargs="+", default=["train", "test"])
    dl.set_defaults(run=commands.run_download)
    tr = sub.add_parser("train", help="pretrain a method and report kNN accuracy every epoch",
                        parents=[profile])
    tr.add_argument("method", help="a name from minissl.methods.available(), any case")
    tr.add_argument("--dataset", help=f"one of {DATASETS} (default: the profile's)")
    tr.add_argument("--n-train", type=positive, default=None,
                    help="training images (default: the profile's for its data set, else all)")
    tr.add_argument("--eval-n", type=positive, default=1000,
                    help="test images for the kNN score")
    tr.add_argument("--eval-every", type=positive, default=1, help="epochs between kNN scores")
    tr.add_argument("--backbone", type=str.lower, choices=BACKBONES,
                    help="the encoder (default: the profile's)")
    tr.add_argument("--width", type=positive, default=None,
                    help="backbone width (default: profile)")
    tr.add_argument("--epochs", type=positive, default=None,
                    help="passes over the data (default: the profile's; `info` shows them)")
    tr.add_argument("--batch-size", type=positive, default=None)
    tr.add_argument("--lr", type=at_least(0, float, above=True), default=None,
                    help="peak learning rate (default: the method's recipe, else 1e-3)")
    tr.add_argument("--optimizer", default="adamw", choices=["adamw", "adam", "sgd"])
    tr.add_argument("--weight-decay", type=float, default=None,
                    help="default: the method's recipe (1e-4; 0.05 for MAE)")
    tr.add_argument("--warmup-steps", type=natural, default=None,
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
    tr.add_argument("--checkpoint-every", type=positive, default=None, metavar="STEPS",
                    help="optimizer steps between checkpoints (default: once an epoch)")
    tr.add_argument("--fresh", action="store_true",
                    help="start afresh, overwriting the checkpoint in --checkpoint-dir")
    tr.add_argument("--data-root", default=None)
    tr.add_argument("--download", action="store_true")
    tr.add_argument("--no-progress", action="store_true")
    tr.add_argument("--method-arg", action="append", default=[], metavar="KEY=VALUE",
                    help="extra constructor argument of the method, e.g. temperature=0.2")
    tr.set_defaults(run=commands.run_train)
    ev = sub.add_parser("evaluate", parents=[profile],
                        help="score a checkpoint of `train` with kNN and a few-label probe")
    ev.add_argument("checkpoint", help="the --checkpoint-dir of a `train` run, or its last.pt")
    ev.add_argument("--method", help="check that the checkpoint is of this method (needed only "
                                     "when run.json is missing)")
    ev.add_argument("--dataset", help=f"one of {DATASETS} (default: the one it was trained on)")
    ev.add_argument("--n-train", type=positive, default=None,
                    help="training images for kNN and the probe (default: as in training)")
    ev.add_argument("--eval-n", type=positive, default=None, help="test images (default: all)")
    ev.add_argument("--labels-per-class", type=positive, default=10,
                    help="labelled training images per class of the linear probe")
    ev.add_argument("--label-draws", type=positive, default=1,
                    help="draws of the labelled images; the probe's score is their mean")
    ev.add_argument("--backbone", type=str.lower, choices=BACKBONES,
                    help="default: as in training")
    ev.add_argument("--width", type=positive, default=None, help="default: as in training")
    ev.add_argument("--seed", type=int, default=0, help="seed of the labelled images' choice")
    ev.add_argument("--device", default="auto")
    ev.add_argument("--data-root", default=None)
    ev.add_argument("--download", action="store_true")
    ev.set_defaults(run=commands.run_evaluate)
    be = sub.add_parser("bench", parents=[profile],
                        help="pretrain every image method at one budget; write a table and plot")
    be.add_argument("--methods", nargs="+", default=None, metavar="NAME",
                    help="recipe names, space- or comma-separated (default: all 13 image "
                         "methods; see minissl.recipes.available())")
    be.add_argument("--dataset", help=f"one of {DATASETS} (default: the profile's)")
    be.add_argument("--backbone", type=str.lower, choices=BACKBONES,
                    help="every method's encoder (default: the profile's; MAE always a ViT)")
    be.add_argument("--epochs", type=positive, default=None,
                    help="pretraining epochs of every method (default: the profile's)")
    be.add_argument("--seeds", type=int, nargs="+", default=[0],
                    help="one run per seed; several give mean ± std (default: 0)")
    be.add_argument("--out", default="bench-results",
                    help="folder of results.csv/.md/.png and of runs/ (finished runs)")
    be.add_argument("--n-train", type=positive, default=None, help="default: the profile's")
    be.add_argument("--n-test", type=positive, default=None, help="default: the profile's")
    be.add_argument("--image-size", type=positive, default=None, help="resize the images")
    be.add_argument("--width", type=positive, default=None,
                    help="backbone width (default: profile)")
    be.add_argument("--batch-size", type=positive, default=None, help="default: the profile's")
    be.add_argument("--labels-per-class", type=positive, default=None,
                    help="labels per class of the linear probe (default: 10)")
    be.add_argument("--label-draws", type=positive, default=1,
                    help="draws of the labelled images per run; the probe's score is their mean")
    be.add_argument("--data-root", default=None)
    be.add_argument("--download", action="store_true")
    be.add_argument("--no-progress", action="store_true")
    be.add_argument("--fresh", action="store_true",
                    help="train every method again instead of reusing finished runs")
    be.set_defaults(run=commands.run_bench)
    return parser
