"""Write a Broden-format miniature from real data: Fashion-MNIST test images and their pixel concepts
(shape, position and class categories; invert_fast.cases.zoo.fashion_broden), for `invert-fast compare
--broden` and anyone who wants to try a Broden tool on a data set that fits in seconds.

    python scripts/fashion_broden.py out/fashion-broden --samples 2000
    invert-fast compare --broden out/fashion-broden --image-size 160 --netdissect netdissect-lite
"""

import argparse
import sys

from invert_fast.cases import zoo


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("directory", help="where to write the Broden directory")
    p.add_argument("--samples", type=int, default=2000, help="Fashion-MNIST test images (default 2,000)")
    args = p.parse_args(argv)
    try:
        root = zoo.fashion_broden(args.directory, args.samples)
    except (ValueError, OSError, ImportError) as e:
        print(f"fashion_broden: error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {args.samples} images and their labels to {root} (index.csv, category.csv, label.csv, c_*.csv)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
