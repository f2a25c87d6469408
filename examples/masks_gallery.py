"""The attention masks of Su Jianlin's "Transformer如戏，全靠Mask" (kexue.fm 6933) as pictures.

    python examples/masks_gallery.py --out runs/masks

Writes one PNG per mask (rows = outputs/queries, columns = inputs/keys; blue = may attend, white = blocked):
bidirectional (BERT), causal (GPT), UniLM for the article's `[CLS] 你 想 吃 啥 [SEP] 白 切 鸡 [SEP]`, XLNet's
query and content streams for the order `<s> 迎 京 你 欢 北` of `<s> 北 京 欢 迎 你`, a ragged UniLM batch with
padding, and `gallery.png` with all of them side by side.
"""

import argparse
import os
import sys


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", default=os.environ.get("KERAS_BACKEND", "jax"), choices=["jax", "tensorflow", "torch"])
    parser.add_argument("--cell", type=int, default=16, help="pixels per cell")
    parser.add_argument("--out", default="runs/masks")
    args = parser.parse_args(argv)
    os.environ["KERAS_BACKEND"] = args.backend

    import numpy as np
    from keras import ops

    from kgen.images import save_png
    from kgen.text.masks import BidirectionalMask, CausalMask, PermutationMask, UniLMMask
    from kgen.text.plot import mask_gallery, save_mask_png

    segments = np.array([[0, 0, 0, 0, 0, 0, 1, 1, 1, 1]])
    ragged_segments = np.array([[0, 0, 0, 1, 1, 0, 0, 0], [0, 0, 0, 0, 0, 1, 1, 1]])
    ragged_padding = np.array([[1, 1, 1, 1, 1, 0, 0, 0], [1] * 8], bool)
    order = np.array([[0, 4, 2, 5, 3, 1]])
    masks = {
        "bidirectional": BidirectionalMask()(np.ones((1, 10), bool))[0],
        "causal": CausalMask()(np.ones((1, 10), bool))[0],
        "unilm": UniLMMask()(segments)[0],
        "permutation_query": PermutationMask("query")(order)[0],
        "permutation_content": PermutationMask("content")(order)[0],
        "unilm_ragged_row0": UniLMMask()(ragged_segments, ragged_padding)[0],
        "unilm_ragged_row1": UniLMMask()(ragged_segments, ragged_padding)[1],
    }
    masks = {name: np.asarray(ops.convert_to_numpy(mask)) for name, mask in masks.items()}
    os.makedirs(args.out, exist_ok=True)
    for name, mask in masks.items():
        save_mask_png(os.path.join(args.out, f"{name}.png"), mask, cell=args.cell)
        print(f"{name}:\n" + "\n".join("".join("1" if v else "0" for v in row) for row in mask))
    save_png(os.path.join(args.out, "gallery.png"), mask_gallery(list(masks.values()), cell=args.cell))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
