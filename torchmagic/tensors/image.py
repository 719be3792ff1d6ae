"""Draw tensors that are pictures: grayscale, RGB(A), batches and video frames.

Recognised layouts (channels first, as torchvision uses): ``(H, W)``,
``(C, H, W)``, ``(N, C, H, W)`` and ``(N, T, C, H, W)`` with C in {1, 3, 4};
also channels-last ``(H, W, C)`` and stacks ``(N, H, W)`` when their planes
look like pictures (not an ``(N, T, C)`` series such as ``(8, 50, 3)``).  Values are mapped to 0–255 and the mapping
is stated, because a learner's "why is my image black?" is usually a range
question.  PNGs are encoded with zlib alone (no Pillow dependency).
"""

from __future__ import annotations

import base64
import struct
import zlib
from typing import TYPE_CHECKING

from torchmagic.core.meta import fmt_shape
from torchmagic.i18n import N_, tr
from torchmagic.tensors.report import Picture

if TYPE_CHECKING:
    import torch

__all__ = ["picture", "png_bytes"]

MAX_SIDE = 256  # larger images are shown strided to this size
_MIN_SIDE = 8  # a channels-last or stacked plane smaller than this is not read as a picture
_MAX_ASPECT = 4  # nor one more than this many times wider than tall
THUMB_WIDTH = 24  # terminal thumbnails: characters wide


def png_bytes(pixels: bytes, width: int, height: int, channels: int) -> bytes:
    """Encode 8-bit grayscale (1), RGB (3) or RGBA (4) rows as a PNG file."""
    color_type = {1: 0, 3: 2, 4: 6}[channels]
    stride = width * channels
    raw = b"".join(b"\x00" + pixels[y * stride : (y + 1) * stride] for y in range(height))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    header = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")


def _image_like(h: int, w: int) -> bool:
    """Whether an ``h`` × ``w`` plane is plausibly a picture rather than a series or a table.

    A channels-last ``(8, 50, 3)`` is more often 8 series of 50 steps with 3
    features than an 8×50 picture: pictures are at least 8 pixels a side and
    at most 4 times wider than tall (or the other way round).
    """
    return min(h, w) >= _MIN_SIDE and max(h, w) <= _MAX_ASPECT * min(h, w)


def _frames(t: torch.Tensor) -> tuple[torch.Tensor, str] | str:
    """(frames as (F, C, H, W), layout description), or why the shape is not read as pictures."""
    shape = tuple(t.shape)
    chans = (1, 3, 4)
    text = fmt_shape(shape)
    if t.dim() == 2:
        return t[None, None], tr("(H, W) = {shape}: one grayscale image", shape=text)
    if t.dim() == 3:
        if shape[0] in chans:
            return t[None], tr("(C, H, W) = {shape}: one image, {kind}", shape=text, kind=_kind(shape[0]))
        if shape[2] in chans and _image_like(shape[0], shape[1]):
            return t.permute(2, 0, 1)[None], tr("(H, W, C) = {shape}: one image, {kind} (channels last)",
                                                shape=text, kind=_kind(shape[2]))
        if _image_like(shape[1], shape[2]):
            return t[:, None], tr("{shape} read as {n} grayscale images (H, W)", shape=text, n=shape[0])
        fields = {"shape": text, "n": shape[0], "steps": shape[1], "values": shape[2]}
        if shape[2] in chans:
            return tr("not drawn: {shape} looks like {n} series of {steps} steps with {values} values each, "
                      "(N, T, C), rather than pictures; to draw it anyway give a picture layout: x[0] as one "
                      "(H, W) plane, x.permute(2, 0, 1) as one (C, H, W) image", **fields)
        return tr("not drawn: {shape} looks like {n} series of {steps} steps with {values} values each, "
                  "(N, T, C), rather than pictures; to draw it anyway give a picture layout: x[0] as one "
                  "(H, W) plane", **fields)
    if t.dim() == 4 and shape[1] in chans:
        return t, tr("(N, C, H, W) = {shape}: {n} images, {kind}", shape=text, n=shape[0], kind=_kind(shape[1]))
    if t.dim() == 5 and shape[2] in chans:
        n, f = shape[0], shape[1]
        return t.reshape(n * f, *shape[2:]), tr("(N, T, C, H, W) = {shape}: {n} clip(s) of {frames} frames, {kind}",
                                                shape=text, n=n, frames=f, kind=_kind(shape[2]))
    return tr("not drawn: shape {shape} is not (H, W), (C, H, W), (N, C, H, W) or (N, T, C, H, W) with C in 1, 3, 4",
              shape=text)


_KINDS = {1: N_("grayscale"), 3: "RGB", 4: "RGBA"}


def _kind(c: int) -> str:
    return tr(_KINDS[c]) if c == 1 else _KINDS[c]


def picture(t: torch.Tensor, max_frames: int) -> Picture | str:
    """Images of ``t``, or a sentence saying why it is not drawable as a picture."""
    import torch

    if (getattr(t, "is_nested", False) or t.device.type == "meta" or t.layout != torch.strided
            or t.numel() == 0 or t.is_complex() or t.is_quantized):
        return tr("not drawn: the tensor has no readable real values")
    found = _frames(t.detach())
    if isinstance(found, str):
        return found
    frames, layout = found
    total = frames.shape[0]
    with torch.no_grad():
        frames = frames[:max_frames]
        h, w = frames.shape[-2:]
        step = max(1, -(-max(h, w) // MAX_SIDE))
        frames = frames[..., ::step, ::step]
        if t.dtype == torch.uint8:
            pix = frames
            mapping = tr("uint8 values shown as they are (0–255)")
        else:
            x = frames.double() if t.dtype == torch.float64 else frames.float()
            finite = x[torch.isfinite(x)]
            lo, hi = (finite.min().item(), finite.max().item()) if finite.numel() else (0.0, 1.0)
            if t.dtype == torch.bool:
                lo, hi = 0.0, 1.0
                mapping = tr("False → black, True → white")
            elif lo >= 0 and hi <= 1:
                lo, hi = 0.0, 1.0
                mapping = tr("values in [0, 1] mapped to 0–255 (0 black, 1 white)")
            else:
                mapping = tr("values mapped linearly from [{lo}, {hi}] (the shown frames' min and max) to 0–255; "
                             "NaN/Inf drawn black", lo=format(lo, ".4g"), hi=format(hi, ".4g"))
            scale = 255.0 / (hi - lo) if hi > lo else 0.0
            x = torch.nan_to_num((x - lo) * scale, nan=0.0, posinf=0.0, neginf=0.0)
            pix = x.clamp(0, 255).round().to(torch.uint8)
        pix = pix.permute(0, 2, 3, 1).contiguous().cpu()  # F, H, W, C (small: shown frames only)
    pngs: list[str] = []
    thumbs: list[list[list[tuple[int, int, int]]]] = []
    for frame in pix:
        fh, fw, c = frame.shape
        data = bytes(frame.reshape(-1).tolist())
        pngs.append(base64.b64encode(png_bytes(data, fw, fh, c)).decode("ascii"))
        tstep = max(1, -(-fw // THUMB_WIDTH))
        small = frame[::tstep, ::tstep]
        rows = []
        for row in small.tolist():
            rows.append([tuple(px[:3]) if c >= 3 else (px[0], px[0], px[0]) for px in row])
        thumbs.append(rows)  # type: ignore[arg-type]
    return Picture(layout=layout, mapping=mapping, pngs=pngs, thumbs=thumbs, shown=len(pngs), total=int(total))
