"""tensorinfo.image: picture layouts, value mapping, and valid PNG files."""

from __future__ import annotations

import base64
import struct
import zlib

import pytest
import torch

from torchmagic.tensors.image import picture, png_bytes


def _decode(png_b64: str) -> tuple[int, int, int, bytes]:
    """Minimal PNG reader (8-bit, filter 0 rows): width, height, colour type, pixels."""
    data = base64.b64decode(png_b64)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, ihdr = 8, b"", b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        tag, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(tag + body)
        if tag == b"IHDR":
            ihdr = body
        elif tag == b"IDAT":
            idat += body
        pos += 12 + length
    w, h, _depth, ctype = struct.unpack(">IIBB", ihdr[:10])
    raw = zlib.decompress(idat)
    return w, h, ctype, raw


def test_png_round_trip() -> None:
    pixels = bytes([0, 255, 10, 20, 30, 40])
    png = base64.b64encode(png_bytes(pixels, 3, 2, 1)).decode()
    w, h, ctype, raw = _decode(png)
    assert (w, h, ctype) == (3, 2, 0)
    assert raw == b"\x00" + pixels[:3] + b"\x00" + pixels[3:]


@pytest.mark.parametrize(
    "shape, frames, words",
    [
        ((8, 9), 1, "(H, W)"),
        ((3, 8, 9), 1, "RGB"),
        ((1, 8, 9), 1, "grayscale"),
        ((8, 9, 3), 1, "channels last"),
        ((5, 3, 8, 9), 5, "5 images"),
        ((2, 4, 3, 8, 9), 8, "2 clip(s) of 4 frames"),
    ],
)
def test_layouts(shape: tuple[int, ...], frames: int, words: str) -> None:
    p = picture(torch.rand(shape), max_frames=16)
    assert not isinstance(p, str)
    assert words in p.layout and len(p.pngs) == frames == p.total
    w, h, _, _ = _decode(p.pngs[0])
    assert (w, h) == (9, 8)


def test_frames_are_capped_and_said() -> None:
    p = picture(torch.rand(20, 1, 4, 4), max_frames=6)
    assert not isinstance(p, str) and p.shown == 6 and p.total == 20


def test_value_mapping_is_stated_and_applied() -> None:
    p = picture(torch.tensor([[-2.0, 2.0]]), 4)
    assert not isinstance(p, str) and "[-2, 2]" in p.mapping
    assert _decode(p.pngs[0])[3] == b"\x00\x00\xff"  # min -> black, max -> white
    unit = picture(torch.tensor([[0.0, 0.5]]), 4)
    assert not isinstance(unit, str) and "[0, 1]" in unit.mapping
    assert _decode(unit.pngs[0])[3] == b"\x00\x00\x80"
    u8 = picture(torch.tensor([[7, 200]], dtype=torch.uint8), 4)
    assert not isinstance(u8, str) and _decode(u8.pngs[0])[3] == b"\x00\x07\xc8"


def test_not_a_picture_is_a_sentence() -> None:
    assert isinstance(picture(torch.rand(5, 5, 5, 5), 4), str)
    assert isinstance(picture(torch.rand(3, device="meta"), 4), str)


def test_thumbnails_are_small_rgb_grids() -> None:
    p = picture(torch.rand(3, 100, 100), 4)
    assert not isinstance(p, str)
    thumb = p.thumbs[0]
    assert len(thumb[0]) <= 25 and all(len(px) == 3 for px in thumb[0])


@pytest.mark.parametrize("shape", [(8, 50, 3), (8, 50, 5), (16, 200, 1), (5, 5, 5)])
def test_a_time_series_is_not_drawn_as_a_picture(shape: tuple[int, ...]) -> None:
    """Issue 14: the (8, 50, 3) series was drawn as "one image, RGB (channels last)"."""
    p = picture(torch.rand(shape), max_frames=16)
    assert isinstance(p, str) and "(N, T, C)" in p and "x[0] as one (H, W) plane" in p
    assert ("x.permute(2, 0, 1)" in p) == (shape[2] in (1, 3, 4))
    # the suggested layouts are drawn
    assert not isinstance(picture(torch.rand(shape)[0], max_frames=16), str)


@pytest.mark.parametrize("shape", [(32, 32, 3), (28, 28, 1), (64, 100, 4), (10, 28, 28)])
def test_pictures_with_the_channels_last_or_stacked_still_are(shape: tuple[int, ...]) -> None:
    assert not isinstance(picture(torch.rand(shape), max_frames=16), str)
