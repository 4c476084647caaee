#!/usr/bin/env python3
"""Renders the golden MoCo v2 views of the augmentation parity vectors with torchvision + Pillow.

usage: make_parity_views.py CASE_DIR OUT_DIR     write OUT_DIR/caseNNNN.want.png for every case
       make_parity_views.py CASE_DIR --check     compare with CASE_DIR's own want.png files

CASE_DIR holds cases.txt and, per case, caseNNNN.in.png (the decoded RGB input) and
caseNNNN.params.json (one view's sampled parameters; schema in its README). The parameters are
injected, not sampled: crop+resize (torchvision's PIL path: Image.crop then bilinear resize),
colour jitter in the params' order, 3-channel grayscale, MoCo's own PIL GaussianBlur(radius=sigma),
horizontal flip - the ops and order of main_moco.py --aug-plus, before ToTensor.
The same file runs under torchvision 0.14 + Pillow 9.4 (Debian 12) and 0.29 + Pillow 13 (PyPI).
"""
import json, os, sys

import numpy as np
import PIL
import torchvision
import torchvision.transforms.functional as F
from PIL import Image, ImageFilter
from torchvision.transforms import InterpolationMode

JITTER = {"brightness": F.adjust_brightness, "contrast": F.adjust_contrast,
          "saturation": F.adjust_saturation, "hue": F.adjust_hue}


def render(img, p):
    c = p["crop"]
    img = F.resized_crop(img, c["top"], c["left"], c["height"], c["width"], list(p["size"]),
                         InterpolationMode.BILINEAR)
    if p["jitter"] is not None:
        for op in p["jitter"]["order"]:
            img = JITTER[op](img, p["jitter"][op])
    if p["grayscale"]:
        img = F.rgb_to_grayscale(img, num_output_channels=3)
    if p["blur_sigma"] is not None:
        img = img.filter(ImageFilter.GaussianBlur(radius=p["blur_sigma"]))
    if p["flip"]:
        img = F.hflip(img)
    return img


def cases(case_dir):
    with open(os.path.join(case_dir, "cases.txt")) as f:
        for line in f:
            name = line.strip()
            if name and not name.startswith("#"):
                yield name


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    case_dir, out = sys.argv[1], sys.argv[2]
    print(f"torchvision {torchvision.__version__}, Pillow {PIL.__version__}, numpy {np.__version__}",
          file=sys.stderr)
    if out != "--check":
        os.makedirs(out, exist_ok=True)
    bad = 0
    for name in cases(case_dir):
        with open(os.path.join(case_dir, name + ".params.json")) as f:
            params = json.load(f)
        src = Image.open(os.path.join(case_dir, name + ".in.png")).convert("RGB")
        view = render(src, params).convert("RGB")
        if out == "--check":
            want = np.asarray(Image.open(os.path.join(case_dir, name + ".want.png")).convert("RGB"), dtype=np.int16)
            got = np.asarray(view, dtype=np.int16)
            d = np.abs(got - want) if got.shape == want.shape else None
            ok = d is not None and d.max() == 0
            bad += not ok
            print(f"{name}: " + ("shape %s vs %s" % (got.shape, want.shape) if d is None else
                                 f"max |diff| {d.max()}, mean {d.mean():.4f}, {np.count_nonzero(d)} samples differ"))
        else:
            view.save(os.path.join(out, name + ".want.png"), optimize=True)
    if bad:
        sys.exit(f"{bad} case(s) differ")


if __name__ == "__main__":
    main()
