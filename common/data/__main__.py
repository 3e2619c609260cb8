"""``python -m common.data``: list, verify and (on request) download datasets."""

from __future__ import annotations

import argparse
import sys

from common.data import DATASETS, DataError, build_dataset
from common.data.vision import download


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m common.data")
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="list registered datasets")
    v = sub.add_parser("verify", help="load both splits of a dataset, verifying its files")
    v.add_argument("name")
    v.add_argument("--root", default=None)
    d = sub.add_parser("download", help="download a torchvision dataset (cifar10, cifar100, svhn)")
    d.add_argument("name")
    d.add_argument("--root", default=None)
    args = parser.parse_args(argv)
    try:
        if args.cmd == "list":
            print("\n".join(DATASETS.names()))
        elif args.cmd == "verify":
            for split in ("train", "test"):
                ds = build_dataset(args.name, split, root=args.root)
                print(f"{args.name}/{split}: {len(ds)} samples, input {tuple(ds.input_shape)}, OK")
        else:
            print(f"downloaded {args.name} to {download(args.name, args.root)}")
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
