"""The PNG the Try it page downloads: the photo once per method, its skeleton drawn on it."""
from __future__ import annotations

import io
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from lab.app.memo import memoised
from lab.app.plots import joint_colour, limb_segments


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:                       # Pillow < 10.1
        return ImageFont.load_default()


def wrap_title(title: str, font, width: float) -> list[str]:
    """A panel title broken into lines at spaces, each at most `width` px wide in `font`
    (a single word longer than that is cut with an ellipsis)."""
    lines: list[str] = []
    for word in title.split():
        if lines and font.getlength(lines[-1] + " " + word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    out = []
    for line in lines or [""]:
        while font.getlength(line) > width and len(line) > 1:
            line = line[:-2] + "…"
        out.append(line)
    return out


@memoised
def annotated_png(rgb: np.ndarray, panels: Sequence[tuple[str, np.ndarray]], box=None,
                  min_height: int = 480) -> bytes:
    """The photo once per (title, joints (K, 2) original px) panel, skeleton drawn on it,
    panels side by side with their titles above. Small photos are enlarged (joints
    scaled with them) so the lines stay readable."""
    h, w = rgb.shape[:2]
    f = max(1, int(np.ceil(min_height / h))) if h < min_height else 1
    f = min(f, 8)
    base = Image.fromarray(rgb).resize((w * f, h * f), Image.LANCZOS) if f > 1 else Image.fromarray(rgb)
    lw = max(2, round(min(base.size) / 120))
    r = lw + 2
    font = _font(18)
    titles = [wrap_title(title, font, base.width - 12) for title, _ in panels]   # each within its own panel
    band = 12 + 22 * max((len(t) for t in titles), default=1)
    out = Image.new("RGB", (base.width * len(panels) + 8 * (len(panels) - 1), base.height + band), "white")
    for i, (title, xy) in enumerate(panels):
        im = base.copy()
        d = ImageDraw.Draw(im)
        if box is not None:
            cx, cy, s = box
            d.rectangle([((cx - s / 2) + 0.5) * f, ((cy - s / 2) + 0.5) * f,
                         ((cx + s / 2) + 0.5) * f, ((cy + s / 2) + 0.5) * f], outline="white", width=1)
        p = (np.asarray(xy, np.float64) + 0.5) * f          # pixel centres -> PIL's corner-based grid
        for a, b, colour in limb_segments():
            d.line([tuple(p[a]), tuple(p[b])], fill=colour, width=lw)
        for k in range(len(p)):
            x, y = p[k]
            d.ellipse([x - r, y - r, x + r, y + r], fill=joint_colour(k), outline="white", width=1)
        x0 = i * (base.width + 8)
        out.paste(im, (x0, band))
        for j, line in enumerate(titles[i]):
            ImageDraw.Draw(out).text((x0 + 6, 7 + 22 * j), line, fill="black", font=font)
    buf = io.BytesIO()
    out.save(buf, format="PNG", optimize=True)
    return buf.getvalue()
