"""Safe image decoding for files we did not make (uploads, dataset JPEGs).

Every failure becomes a `LabError` with a message a person can act on.
"""
from __future__ import annotations

import io
import os
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from lab.errors import LabError

MAX_PIXELS = 40_000_000     # 40 megapixels: bigger is refused before decoding
MAX_BYTES = 25 * 1024 * 1024
MIN_SIDE = 16


def load_image(src, name: str = "image", max_pixels: int = MAX_PIXELS,
               max_bytes: int = MAX_BYTES) -> np.ndarray:
    """Decode a path, bytes or file-like into an RGB uint8 array (H, W, 3).

    EXIF orientation is applied; grayscale, palette and CMYK are converted;
    transparency is composited on white. Refuses non-images, truncated files,
    decompression bombs and images too small to hold a person.
    """
    data = _read_bytes(src, name, max_bytes)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            w, h = img.size
            if w * h > max_pixels:
                raise LabError(f"{name} is {w}x{h} pixels ({w * h / 1e6:.0f} MP); the limit is "
                               f"{max_pixels / 1e6:.0f} MP. Please resize it first.")
            img = ImageOps.exif_transpose(img)
            img.load()
    except LabError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise LabError(f"{name} is too large to decode safely (decompression bomb refused).")
    except UnidentifiedImageError:
        raise LabError(f"{name} is not an image PIL can read (expected JPEG, PNG or WebP).")
    except (OSError, SyntaxError, ValueError) as e:
        raise LabError(f"{name} is damaged or truncated and cannot be decoded ({e}).")
    if min(img.size) < MIN_SIDE:
        raise LabError(f"{name} is only {img.size[0]}x{img.size[1]} pixels; "
                       f"at least {MIN_SIDE}x{MIN_SIDE} is needed to see a person.")
    return to_rgb(img)


def to_rgb(img: Image.Image) -> np.ndarray:
    """Any PIL mode -> RGB uint8 (H, W, 3); alpha is composited on white."""
    if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(bg, rgba)
    elif img.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N"):
        # 16-bit grey (e.g. PNG): scale to 8 bits; convert("RGB") would clip it to white.
        img = img.convert("I").point(lambda v: v * (1 / 257)).convert("L")
    return np.asarray(img.convert("RGB"), dtype=np.uint8).copy()


def _read_bytes(src, name: str, max_bytes: int) -> bytes:
    if isinstance(src, (bytes, bytearray)):
        data = bytes(src)
    elif isinstance(src, (str, os.PathLike)):
        try:
            size = os.path.getsize(src)
        except OSError:
            raise LabError(f"{name}: no file at {src}.")
        if size > max_bytes:
            raise LabError(f"{name} is {size / 2**20:.1f} MB; the limit is {max_bytes / 2**20:.0f} MB.")
        with open(src, "rb") as f:
            data = f.read()
    else:  # file-like (Streamlit UploadedFile)
        data = src.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise LabError(f"{name} is over {max_bytes / 2**20:.0f} MB; please upload a smaller file.")
    if not data:
        raise LabError(f"{name} is empty.")
    return data


def encode_jpeg(rgb: np.ndarray, quality: int = 85) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=quality, subsampling=2, optimize=True)
    return buf.getvalue()


def decode_jpeg(data: bytes) -> np.ndarray:
    try:
        return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.uint8)
    except (OSError, SyntaxError, ValueError) as e:  # a damaged cache: bytes changed on disk
        raise LabError(f"a cached JPEG is damaged ({e}); rebuild the cache with `pose-lab prepare`.")
