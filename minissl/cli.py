"""``python -m minissl``: what a user runs outside a notebook.

    python -m minissl info                       # profile, device, versions, data sets
    python -m minissl download cifar10 [--root DIR]   # fetch a data set for the full profile
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

    for split in args.splits:
        ds = data.load(args.name, split=split, root=args.root, download=True)
        print(ds.describe())
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m minissl", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="show the profile, device and data sets").set_defaults(run=_info)
    dl = sub.add_parser("download", help="download a data set for the full profile")
    dl.add_argument("name", help="cifar10, stl10 or mnist")
    dl.add_argument("--root", default=None, help="where to keep it (default: $MINISSL_DATA)")
    dl.add_argument("--splits", nargs="+", default=["train", "test"])
    dl.set_defaults(run=_download)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
