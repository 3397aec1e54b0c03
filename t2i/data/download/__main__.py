"""python -m t2i.data.download NAME [--root DIR] [--mirror URL] [--images-only | --captions-only]
[--unpack ARCHIVE ...]: fetch (or unpack) a dataset where its reader looks. A failure is one
line on stderr and exit code 2."""
from __future__ import annotations

import argparse
import sys

from t2i.data.download.dataset import fetch_dataset, unpack_local
from t2i.data.download.sources import DATASETS
from t2i.errors import user_errors


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m t2i.data.download",
                                description="Fetch a dataset, check it and lay it out where its reader looks.")
    p.add_argument("name", choices=sorted(DATASETS), help="the dataset")
    p.add_argument("--root", help="dataset folder (default: $T2I_DATA or ./data, plus the dataset's folder, "
                                  "as conf/data/<name>.yaml)")
    p.add_argument("--mirror", help="base URL tried first for every file (URL/<file name>): a lab's copy")
    part = p.add_mutually_exclusive_group()
    part.add_argument("--images-only", action="store_const", const="images", dest="part", default="all")
    part.add_argument("--captions-only", action="store_const", const="captions", dest="part")
    p.add_argument("--unpack", nargs="+", metavar="ARCHIVE",
                   help="lay out archives you already have (checked by contents, not checksum) instead")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    with user_errors():
        if args.unpack:
            root = unpack_local(args.name, args.unpack, args.root, say=print)
        else:
            root = fetch_dataset(args.name, args.root, args.mirror, args.part, say=print)
        print(f"{args.name}: ready under {root} (train with data.root={root})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
