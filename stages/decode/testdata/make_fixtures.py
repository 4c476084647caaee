#!/usr/bin/python3
"""Makes the Pillow reference fixtures of the decode tests (run with Debian 12's /usr/bin/python3:
Pillow 9.4.0 on libjpeg-turbo 2.1.5, the decoder a PyTorch loader uses).

  photo.jpg  RGB JPEG, 4:2:0, quality 90        photo.want.png  Pillow's convert("RGB") of it
  photo422.jpg, photo440.jpg, photo411.jpg      the other chroma subsamplings (the last two
                                                written by libturbojpeg; Pillow cannot)
  photo410.jpg  4:1:0, written by cjpeg (Debian's libjpeg-turbo-progs): TurboJPEG 2.1 has no
                name for it and cannot read its header; libjpeg, so Pillow, decodes it
  cmyk.jpg   Adobe CMYK JPEG as Pillow writes it cmyk.want.png
  ycck.jpg   Adobe YCCK JPEG (libturbojpeg)     ycck.want.png

The images are synthetic (gradients, disks and seeded luma noise: photos carry little
high-frequency chroma) so the script needs nothing else.
"""
import ctypes
import io
import os
import subprocess

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
W, H = 67, 45  # odd sizes exercise the edges of chroma upsampling


def synthetic(channels, seed):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:H, 0:W].astype(np.float64)
    noise = rng.normal(0, 12, (H, W))  # shared by all channels: texture, not chroma noise
    planes = []
    for c in range(channels):
        base = 255 * (0.5 + 0.5 * np.sin((x * (c + 1) + y * (3 - c % 3)) / 9.0))
        disk = ((x - 20 - 8 * c) ** 2 + (y - 24) ** 2) < 100
        base = np.where(disk, 255 - base, base)
        planes.append(base + noise)
    return np.clip(np.stack(planes, -1), 0, 255).astype(np.uint8)


def save_want(jpeg_bytes, name):
    with open(os.path.join(HERE, name + ".jpg"), "wb") as f:
        f.write(jpeg_bytes)
    Image.open(io.BytesIO(jpeg_bytes)).convert("RGB").save(os.path.join(HERE, name + ".want.png"))


TJPF_RGB, TJPF_CMYK = 0, 11
TJSAMP_420, TJSAMP_440, TJSAMP_411 = 2, 4, 5


def turbo_compress(pixels, pixel_format, subsamp):
    tj = ctypes.CDLL("libturbojpeg.so.0")
    tj.tjInitCompress.restype = ctypes.c_void_p
    h = tj.tjInitCompress()
    buf, size = ctypes.POINTER(ctypes.c_ubyte)(), ctypes.c_ulong(0)
    src = pixels.tobytes()
    rc = tj.tjCompress2(ctypes.c_void_p(h), src, W, W * pixels.shape[2], H, pixel_format,
                        ctypes.byref(buf), ctypes.byref(size), subsamp, 90, 0)
    assert rc == 0, "tjCompress2 failed"
    out = ctypes.string_at(buf, size.value)
    tj.tjFree(buf)
    tj.tjDestroy(ctypes.c_void_p(h))
    return out


def cjpeg(pixels, sample):
    ppm = b"P6\n%d %d\n255\n" % (W, H) + pixels.tobytes()
    return subprocess.run(["cjpeg", "-quality", "90", "-sample", sample],
                          input=ppm, capture_output=True, check=True).stdout


def main():
    rgb = synthetic(3, 1)
    for name, subsampling in [("photo", 2), ("photo422", 1)]:
        b = io.BytesIO()
        Image.fromarray(rgb, "RGB").save(b, "JPEG", quality=90, subsampling=subsampling)
        save_want(b.getvalue(), name)
    save_want(turbo_compress(rgb, TJPF_RGB, TJSAMP_440), "photo440")
    save_want(turbo_compress(rgb, TJPF_RGB, TJSAMP_411), "photo411")
    save_want(cjpeg(rgb, "4x2,1x1,1x1"), "photo410")

    cmyk = synthetic(4, 2)
    b = io.BytesIO()
    Image.fromarray(cmyk, "CMYK").save(b, "JPEG", quality=90)
    save_want(b.getvalue(), "cmyk")

    save_want(turbo_compress(cmyk, TJPF_CMYK, TJSAMP_420), "ycck")


if __name__ == "__main__":
    main()
