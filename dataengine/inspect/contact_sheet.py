"""`dataengine show`: a contact sheet of samples with their boxes, points and traces drawn over the images.

Each tile holds a header (key, source / split, image size), the image scaled to fit, every drawn item in its own
colour with a numbered badge, and below it the queries, wrapped, each behind the badge of the same colour.
Coordinates are drawn exactly as stored (pixels of the stored image; EXIF orientation is ignored on purpose,
since the coordinates refer to the stored pixels). This is the only inspection tool that decodes images.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from dataengine.records.grounding import BoxItem, PointItem, TraceItem, VqaItem
from dataengine.shards.grounding import GroundingSample

PALETTE = [  # saturated colours that carry white badge text and stand out on photos
    (230, 25, 75),
    (60, 180, 75),
    (0, 130, 200),
    (245, 130, 48),
    (145, 30, 180),
    (0, 150, 160),
    (240, 50, 230),
    (154, 99, 36),
    (128, 128, 0),
    (0, 0, 128),
]
VQA_COLOUR = (90, 90, 90)


@dataclass(frozen=True)
class SheetLayout:
    """Pixel sizes of one tile; the sheet is `cols` tiles wide with `gap` pixels around each."""

    tile_w: int = 400
    image_h: int = 300
    header_h: int = 22
    text_h: int = 170
    gap: int = 10
    font_px: int = 14
    header_px: int = 13
    max_upscale: float = 4.0

    @property
    def tile_h(self) -> int:
        return self.header_h + self.image_h + self.text_h

    def sheet_size(self, n_tiles: int, cols: int) -> tuple[int, int]:
        rows = math.ceil(n_tiles / cols)
        return cols * self.tile_w + (cols + 1) * self.gap, rows * self.tile_h + (rows + 1) * self.gap


def default_cols(n: int) -> int:
    return max(1, math.ceil(math.sqrt(n)))


def _font(size: int, bold: bool = False) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """DejaVu Sans from matplotlib's bundled fonts (always installed with the core); Pillow's default otherwise."""
    try:
        import matplotlib

        name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
        return ImageFont.truetype(str(Path(matplotlib.__file__).parent / "mpl-data" / "fonts" / "ttf" / name), size)
    except (ImportError, OSError):
        return ImageFont.load_default(size)


class _Fonts:
    def __init__(self, layout: SheetLayout) -> None:
        self.text = _font(layout.font_px)
        self.header = _font(layout.header_px)
        self.badge = _font(layout.font_px - 2, bold=True)
        self.line_h = layout.font_px + 5


def wrap_text(text: str, font, width_px: float) -> list[str]:
    """Greedy word wrap to a pixel width (long words are cut)."""
    lines: list[str] = []
    current = ""
    for word in text.split():
        while font.getlength(word) > width_px and len(word) > 1:  # a word wider than the line
            cut = max(1, int(len(word) * width_px / font.getlength(word)) - 1)
            if current:
                lines.append(current)
                current = ""
            lines.append(word[:cut])
            word = word[cut:]
        candidate = f"{current} {word}".strip()
        if font.getlength(candidate) <= width_px:
            current = candidate
        else:
            lines.append(current)
            current = word
    if current:
        lines.append(current)
    return lines or [""]


def _badge(draw: ImageDraw.ImageDraw, xy: tuple[float, float], label: str, colour, font) -> float:
    """A filled rounded label with white text, top-left at xy; returns its width."""
    x, y = xy
    w = font.getlength(label) + 8
    h = font.size + 4
    draw.rounded_rectangle([x, y, x + w, y + h], radius=4, fill=colour, outline=(255, 255, 255))
    draw.text((x + 4, y + 1), label, fill=(255, 255, 255), font=font)
    return w


def _decode(sample: GroundingSample, box_w: int, box_h: int, max_upscale: float) -> tuple[Image.Image | None, float]:
    """The image scaled to fit (box_w, box_h); the scale from stored pixels to drawn pixels."""
    info = sample.record.image
    scale = min(box_w / info.width, box_h / info.height, max_upscale)
    size = (max(1, round(info.width * scale)), max(1, round(info.height * scale)))
    try:
        with Image.open(io.BytesIO(sample.image_bytes)) as im:
            im.draft("RGB", size)  # JPEG: decode at a reduced scale when that is enough
            image = im.convert("RGB").resize(size, Image.Resampling.LANCZOS)
    except Exception:  # PIL raises many types for broken data; the tile says so
        return None, scale
    return image, scale


class _Overlay:
    """Draws items over the image in layers (boxes, then traces, then points, then badges), so small marks stay
    on top, and nudges a badge down while it would cover one already placed."""

    def __init__(self, draw: ImageDraw.ImageDraw, scale: float, origin: tuple[int, int], fonts: _Fonts) -> None:
        self.draw, self.scale, self.origin, self.fonts = draw, scale, origin, fonts
        self.layers: dict[str, list] = {"box": [], "trace": [], "point": []}
        self.badges: list[tuple[tuple[float, float], str, tuple]] = []

    def px(self, x: float, y: float) -> tuple[float, float]:
        return self.origin[0] + x * self.scale, self.origin[1] + y * self.scale

    def add(self, item, number: int, colour) -> None:
        label = str(number)
        if isinstance(item, BoxItem):
            for x1, y1, x2, y2 in item.boxes:
                a, b = self.px(x1, y1), self.px(x2, y2)
                self.layers["box"].append((a, b, colour))
                self.badges.append(((a[0] + 2, a[1] + 2), label, colour))
        elif isinstance(item, PointItem):
            for x, y in item.points:
                c = self.px(x, y)
                self.layers["point"].append((c, colour))
                self.badges.append(((c[0] + 8, c[1] - 8), label, colour))
        elif isinstance(item, TraceItem):
            pts = [self.px(x, y) for x, y in item.trace]
            self.layers["trace"].append((pts, colour))
            mid = pts[len(pts) // 2]
            self.badges.append(((mid[0] + 8, mid[1] - 8), label, colour))

    def render(self) -> None:
        draw = self.draw
        for a, b, colour in self.layers["box"]:
            draw.rectangle([a, b], outline=(0, 0, 0), width=5)
            draw.rectangle([a, b], outline=colour, width=3)
        for pts, colour in self.layers["trace"]:
            draw.line(pts, fill=(0, 0, 0), width=6, joint="curve")
            draw.line(pts, fill=colour, width=3, joint="curve")
            sx, sy = pts[0]
            draw.ellipse([sx - 6, sy - 6, sx + 6, sy + 6], fill=(255, 255, 255), outline=colour, width=3)
            _arrow_head(draw, pts, colour)
        for (cx, cy), colour in self.layers["point"]:
            draw.ellipse([cx - 7, cy - 7, cx + 7, cy + 7], fill=(255, 255, 255), outline=(0, 0, 0), width=1)
            draw.ellipse([cx - 5, cy - 5, cx + 5, cy + 5], fill=colour)
        placed: list[tuple[float, float, float, float]] = []
        height = self.fonts.badge.size + 5
        for (x, y), label, colour in self.badges:
            width = self.fonts.badge.getlength(label) + 9
            for _ in range(6):  # step down past badges already there
                hit = next(
                    (r for r in placed if x < r[2] and r[0] < x + width and y < r[3] and r[1] < y + height), None
                )
                if hit is None:
                    break
                y = hit[3] + 1
            placed.append((x, y, x + width, y + height))
            _badge(draw, (x, y), label, colour, self.fonts.badge)


def _arrow_head(draw: ImageDraw.ImageDraw, pts: list[tuple[float, float]], colour) -> None:
    (ex, ey) = pts[-1]
    prev = next((p for p in reversed(pts[:-1]) if math.dist(p, pts[-1]) > 1e-6), None)
    if prev is None:
        return
    angle = math.atan2(ey - prev[1], ex - prev[0])
    size = 13
    left = (ex - size * math.cos(angle - 0.45), ey - size * math.sin(angle - 0.45))
    right = (ex - size * math.cos(angle + 0.45), ey - size * math.sin(angle + 0.45))
    draw.polygon([(ex, ey), left, right], fill=colour, outline=(0, 0, 0))


def _item_text(item) -> str:
    if isinstance(item, VqaItem):
        turns = item.conversation
        question = next((t.value for t in turns if t.from_ == "human"), "")
        answer = next((t.value for t in turns if t.from_ == "gpt"), "")
        more_turns = sum(1 for t in turns if t.from_ == "human") - 1
        more = f" (+{more_turns} more question{'s' if more_turns > 1 else ''})" if more_turns > 0 else ""
        return f"Q: {question.replace('<image>', '').strip()}  A: {answer}{more}"
    return f"{item.task}: {item.query}"


def draw_tile(sample: GroundingSample, layout: SheetLayout, fonts: _Fonts, task: str | None = None) -> Image.Image:
    """One tile: header, image with the items drawn over it, and the numbered queries."""
    tile = Image.new("RGB", (layout.tile_w, layout.tile_h), (255, 255, 255))
    draw = ImageDraw.Draw(tile)
    record = sample.record
    size = f"{record.image.width}x{record.image.height}" if record.image else "text-only"
    header = f"{record.key}  ·  {record.source}/{record.split}  ·  {size}"
    draw.text((6, 4), wrap_text(header, fonts.header, layout.tile_w - 12)[0], fill=(40, 40, 40), font=fonts.header)
    top = layout.header_h
    draw.rectangle([0, top, layout.tile_w, top + layout.image_h], fill=(30, 30, 30))
    items = [it for it in record.items if task is None or it.task == task]
    hidden = len(record.items) - len(items)
    if record.image is None or sample.image_bytes is None:
        draw.text(
            (layout.tile_w / 2, top + layout.image_h / 2),
            "text-only sample",
            fill=(200, 200, 200),
            font=fonts.text,
            anchor="mm",
        )
    else:
        image, scale = _decode(sample, layout.tile_w, layout.image_h, layout.max_upscale)
        origin = (
            round((layout.tile_w - round(record.image.width * scale)) / 2),
            top + round((layout.image_h - round(record.image.height * scale)) / 2),
        )
        if image is None:
            draw.text(
                (layout.tile_w / 2, top + layout.image_h / 2),
                "image does not decode",
                fill=(255, 90, 90),
                font=fonts.text,
                anchor="mm",
            )
        else:
            tile.paste(image, origin)
        overlay = _Overlay(draw, scale, origin, fonts)
        for number, item in enumerate(items, start=1):
            overlay.add(item, number, PALETTE[(number - 1) % len(PALETTE)])
        overlay.render()
    _draw_queries(draw, items, hidden, layout, fonts, top + layout.image_h + 6)
    return tile


def _draw_queries(draw, items, hidden: int, layout: SheetLayout, fonts: _Fonts, y: float) -> None:
    """Numbered, wrapped queries; when they do not fit, the last line says how many items were left out."""
    lines_left = int((layout.tile_h - 4 - y) // fonts.line_h)
    for number, item in enumerate(items, start=1):
        later = len(items) - number + hidden
        room = lines_left - (1 if later else 0)  # keep a line for "+k more"
        if room <= 0:
            draw.text((8, y), f"+{later + 1} more items", fill=(120, 120, 120), font=fonts.text)
            return
        colour = VQA_COLOUR if isinstance(item, VqaItem) else PALETTE[(number - 1) % len(PALETTE)]
        badge_w = _badge(draw, (6, y + 1), str(number), colour, fonts.badge)
        lines = wrap_text(_item_text(item), fonts.text, layout.tile_w - badge_w - 18)
        if len(lines) > room:
            lines = [*lines[: room - 1], lines[room - 1] + " …"]
        for line in lines:
            draw.text((badge_w + 12, y), line, fill=(25, 25, 25), font=fonts.text)
            y += fonts.line_h
        lines_left -= len(lines)
    if hidden and lines_left > 0:
        draw.text((8, y), f"({hidden} items of other tasks not shown)", fill=(120, 120, 120), font=fonts.text)


def render_sheet(
    samples: list[GroundingSample],
    out: str | Path,
    *,
    cols: int | None = None,
    task: str | None = None,
    layout: SheetLayout | None = None,
) -> Path:
    """Draw the samples in a grid (row by row, in the given order) and write a PNG."""
    layout = layout or SheetLayout()
    fonts = _Fonts(layout)
    cols = cols or default_cols(len(samples))
    width, height = layout.sheet_size(max(len(samples), 1), cols)
    sheet = Image.new("RGB", (width, height), (225, 225, 225))
    for i, sample in enumerate(samples):
        row, col = divmod(i, cols)
        x = layout.gap + col * (layout.tile_w + layout.gap)
        y = layout.gap + row * (layout.tile_h + layout.gap)
        sheet.paste(draw_tile(sample, layout, fonts, task), (x, y))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out, format="PNG")
    return out
