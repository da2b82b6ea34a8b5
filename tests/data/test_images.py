"""lab.data.images: safe decoding. Every bad input is a LabError with a clear message."""
from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from lab.data.images import MIN_SIDE, decode_jpeg, encode_jpeg, load_image
from lab.errors import LabError


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def jpeg_bytes(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=95, **kw)
    return buf.getvalue()


def png_header_only(w: int, h: int) -> bytes:
    """A PNG that claims w x h pixels (8-bit grey) but carries almost no data."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


def gradient(w=40, h=30):
    ys, xs = np.mgrid[0:h, 0:w]
    return np.stack([xs * 6, ys * 8, (xs + ys) * 3], -1).astype(np.uint8)


# ------------------------------------------------------------------ good input
def test_real_jpeg_from_path_bytes_and_file_like(fixture_root):
    p = fixture_root / "lsp" / "images" / "im0001.jpg"
    a = load_image(p)
    assert a.shape == (160, 70, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(load_image(str(p)), a)
    np.testing.assert_array_equal(load_image(p.read_bytes()), a)
    with open(p, "rb") as f:
        np.testing.assert_array_equal(load_image(f), a)
    np.testing.assert_array_equal(a, np.asarray(Image.open(p).convert("RGB")))


def test_png_is_lossless():
    rgb = gradient()
    np.testing.assert_array_equal(load_image(png_bytes(Image.fromarray(rgb))), rgb)


def test_grayscale_converts_to_rgb():
    g = gradient()[..., 0]
    out = load_image(png_bytes(Image.fromarray(g, "L")))
    assert out.shape == (30, 40, 3)
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], g)
    # 1-bit grey.
    one = load_image(png_bytes(Image.fromarray(g).convert("1")))
    assert one.shape == (30, 40, 3) and set(np.unique(one)) <= {0, 255}


def test_16_bit_grey_is_scaled_not_clipped():
    g = gradient()[..., 0]
    data = png_bytes(Image.fromarray(g.astype(np.uint16) * 257))   # 16-bit PNG
    assert Image.open(io.BytesIO(data)).mode.startswith("I")
    out = load_image(data)
    assert out.shape == (30, 40, 3)
    np.testing.assert_array_equal(out[..., 0], g)


def test_rgba_composites_on_white():
    rgba = np.zeros((20, 20, 4), np.uint8)
    rgba[..., 0] = 200                              # red ...
    rgba[:10, :, 3] = 0                              # top half fully transparent
    rgba[10:, :10, 3] = 255                          # opaque
    rgba[10:, 10:, 3] = 128                          # half transparent
    out = load_image(png_bytes(Image.fromarray(rgba, "RGBA")))
    assert out.shape == (20, 20, 3)
    assert (out[:10] == 255).all()                              # white, not black
    assert (out[10:, :10] == [200, 0, 0]).all()
    assert np.abs(out[15, 15].astype(int) - [228, 127, 127]).max() <= 1   # 0.5 * colour + 0.5 * white


def test_la_and_palette_with_transparency_composite_on_white():
    la = Image.fromarray(np.stack([np.full((20, 20), 50, np.uint8), np.zeros((20, 20), np.uint8)], -1), "LA")
    assert (load_image(png_bytes(la)) == 255).all()
    p = Image.new("P", (20, 20), 0)
    p.putpalette([10, 20, 30] + [0, 0, 0] * 255)
    p.info["transparency"] = 0
    assert (load_image(png_bytes(p)) == 255).all()
    p.info.pop("transparency")
    assert (load_image(png_bytes(p)) == [10, 20, 30]).all()


def test_cmyk_converts_to_rgb():
    img = Image.new("CMYK", (20, 20), (0, 255, 255, 0))   # pure red in CMYK
    out = load_image(jpeg_bytes(img))
    assert out.shape == (20, 20, 3)
    r, g, b = out.reshape(-1, 3).mean(0)
    assert r > 200 and g < 60 and b < 60


def test_exif_orientation_is_respected():
    """Orientation 6: the stored image must be turned 90 degrees clockwise to display."""
    stored = np.zeros((20, 40, 3), np.uint8)           # 40 wide, 20 tall as stored
    stored[:8, :8] = [255, 0, 0]                       # red in the stored top-left corner
    img = Image.fromarray(stored)
    exif = Image.Exif()
    exif[0x0112] = 6
    data = jpeg_bytes(img, exif=exif.tobytes())
    assert Image.open(io.BytesIO(data)).size == (40, 20)
    out = load_image(data)
    assert out.shape == (40, 20, 3)                    # transposed: 20 wide, 40 tall
    # Turned clockwise, the top-left corner goes to the top-right.
    assert out[:6, -6:, 0].mean() > 200 and out[:6, -6:, 1].mean() < 60
    assert out[-6:, :6, 0].mean() < 60
    # Without the tag, the same pixels keep their stored shape.
    assert load_image(jpeg_bytes(img)).shape == (20, 40, 3)


def test_encode_decode_jpeg_round_trip():
    rgb = np.repeat(np.repeat(gradient(32, 32), 2, 0), 2, 1)
    data = encode_jpeg(rgb)
    assert data[:2] == b"\xff\xd8"
    out = decode_jpeg(data)
    assert out.shape == rgb.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - rgb).mean() < 3
    assert encode_jpeg(rgb) == data                    # deterministic


# ------------------------------------------------------------------ bad input
def test_truncated_jpeg(fixture_root):
    data = (fixture_root / "lspet" / "images" / "im00004.jpg").read_bytes()
    with pytest.raises(LabError, match="damaged or truncated"):
        load_image(data[: len(data) // 2], name="upload")


def test_corrupt_jpeg_body(fixture_root):
    data = bytearray((fixture_root / "lsp" / "images" / "im0002.jpg").read_bytes())
    data[400:] = b"\x00" * (len(data) - 400)           # header kept, entropy data destroyed
    data = bytes(data[:-2])
    with pytest.raises(LabError):
        load_image(data)


def test_jpeg_header_only(fixture_root):
    data = (fixture_root / "lsp" / "images" / "im0001.jpg").read_bytes()
    with pytest.raises(LabError):
        load_image(data[:100])


@pytest.mark.parametrize("data", [b"hello, this is not an image\n" * 10, b"%PDF-1.4\n" + bytes(200),
                                  b"\x89PNG\r\n\x1a\n"])
def test_non_image(data):
    with pytest.raises(LabError, match="upload"):
        load_image(data, name="upload")


def test_non_image_file_on_disk(tmp_path):
    p = tmp_path / "notes.jpg"
    p.write_text("name,x,y\nhead,1,2\n")
    with pytest.raises(LabError) as e:
        load_image(p, name=f"dataset image {p}")
    assert "notes.jpg" in str(e.value)


def test_empty_and_missing_files(tmp_path):
    p = tmp_path / "empty.png"
    p.write_bytes(b"")
    with pytest.raises(LabError, match="empty"):
        load_image(p)
    with pytest.raises(LabError, match="empty"):
        load_image(b"")
    with pytest.raises(LabError, match="no file"):
        load_image(tmp_path / "absent.jpg")


@pytest.mark.parametrize("size", [(1, 1), (15, 200), (200, 15)])
def test_too_small_image(size):
    with pytest.raises(LabError, match=f"only {size[0]}x{size[1]}"):
        load_image(png_bytes(Image.new("RGB", size, "white")))


def test_minimum_side_is_accepted():
    assert load_image(png_bytes(Image.new("RGB", (MIN_SIDE, MIN_SIDE)))).shape == (MIN_SIDE, MIN_SIDE, 3)


def test_decompression_bomb_header_is_refused_cheaply():
    data = png_header_only(20000, 20000)               # 400 MP claimed, 100 bytes on disk
    assert len(data) < 200
    with pytest.raises(LabError, match="too large|limit"):
        load_image(data)


def test_over_our_pixel_limit_is_refused_before_decoding():
    data = png_header_only(8000, 6000)                 # 48 MP: under PIL's bomb limit, over ours
    with pytest.raises(LabError, match="8000x6000.*limit is 40 MP"):
        load_image(data)


def test_lower_max_pixels():
    data = png_bytes(Image.new("RGB", (200, 100)))
    with pytest.raises(LabError, match="200x100"):
        load_image(data, max_pixels=10_000)
    assert load_image(data, max_pixels=20_000).shape == (100, 200, 3)


def test_real_bomb_png_is_refused():
    """An actual 20000 x 20000 one-bit PNG: a few hundred kilobytes."""
    img = Image.new("1", (20000, 20000))
    data = png_bytes(img)
    del img
    assert len(data) < 2_000_000
    with pytest.raises(LabError):
        load_image(data)


def test_byte_limits(tmp_path):
    data = png_bytes(Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)))
    assert len(data) > 10_000
    assert load_image(data, max_bytes=len(data)).shape == (64, 64, 3)
    with pytest.raises(LabError, match="MB"):
        load_image(data, max_bytes=1000)
    p = tmp_path / "big.png"
    p.write_bytes(data)
    with pytest.raises(LabError, match="MB"):
        load_image(p, max_bytes=1000)
    with pytest.raises(LabError, match="MB"):
        load_image(io.BytesIO(data), max_bytes=1000)
