"""Paper-review decks from the reports: ``reports/<paper>/slides.pptx`` and ``reports/course.pptx``.

A deck is laid out from what the report stage wrote, never typed by hand: the sections of
``README.md`` (the paper's :class:`~common.report.spec.ReportSpec` rendered), the evaluated claims
of ``claims.json`` and the PNGs of ``figures/``; the title, authors and venue come from
``papers/registry.yaml``. So a number on a slide is the number in ``claims.json``.

Per paper: a title slide; the idea (the report's introduction) in bullets; the claims, paper
beside ours with the verdict, split across slides; one slide per table of the report (long ones
split by rows, wide ones by columns, never shrunk below :data:`TABLE_MIN_PT`), one per figure at
its aspect ratio; what was scaled down; what was not reproduced and why; how to reproduce it.
Speaker notes carry the full text of each section. The course deck has one summary slide per
paper (results reproduced, the first result claims) for a reading group's first session.

**Text fits its box.** Every text box and table cell is wrapped with real font metrics (DejaVu
Sans, shipped with matplotlib, at the box's size) before it is placed; what does not fit goes to
the next slide, or (a single paragraph longer than a slide) is cut at a word with "…" while the
notes keep it whole. The declared font is Arial, narrower than DejaVu Sans, so the measured
layout also fits in PowerPoint, Keynote, Google Slides and LibreOffice (Liberation Sans).
:func:`check_fit` measures a saved deck the same way (the tests use it).

``python -m common.slides paper <slug> --report reports/<slug> --out reports/<slug>/slides.pptx``
``python -m common.slides course --out reports/course.pptx reports/*/claims.json``
``python -m common.slides pdf reports/<slug>/slides.pptx`` (LibreOffice, when installed)
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from common.errors import InputError

# ---------------------------------------------------------------------- geometry and type
EMU_PER_PT = 12700
SLIDE_W_PT, SLIDE_H_PT = 960.0, 540.0  # 13.333 x 7.5 in, 16:9
MARGIN_PT = 36.0
TITLE_TOP_PT, TITLE_H_PT = 14.0, 78.0
BODY_TOP_PT = 100.0
FOOTER_H_PT = 28.0
BODY_BOTTOM_PT = SLIDE_H_PT - FOOTER_H_PT - 4.0
TITLE_PT, BODY_PT, TABLE_PT, TABLE_MIN_PT, CAPTION_PT, CODE_PT = 30, 20, 16, 14, 14, 16
LINE = 1.2  # line height / font size (single spacing)
PARA_SPACE_PT = 6.0  # space after each paragraph
INSET_X_PT, INSET_Y_PT = 7.2, 3.6  # text frame insets (0.1 in, 0.05 in)
CELL_X_PT, CELL_Y_PT = 5.0, 3.0
FONT, MONO = "Arial", "Courier New"
ROWS_MAX = 12  # table rows per slide at most, even when they would fit
ELLIPSIS = "…"
GENERATED = datetime(2000, 1, 1)  # fixed document and zip times: the same inputs, the same bytes

GREEN, RED, GREY, DARK = (
    (0x1B, 0x7F, 0x3B),
    (0xB0, 0x24, 0x1B),
    (0x55, 0x55, 0x55),
    (0x1F, 0x2A, 0x44),
)


class SlidesError(InputError):
    """A report folder or claims file the deck cannot be made from (the message says why)."""


# ---------------------------------------------------------------------- measuring text
@functools.cache
def _font(pt: float, mono: bool = False) -> Any:
    from matplotlib import font_manager
    from PIL import ImageFont

    family = "DejaVu Sans Mono" if mono else "DejaVu Sans"
    path = font_manager.findfont(
        font_manager.FontProperties(family=family), fallback_to_default=False
    )
    return ImageFont.truetype(path, size=round(pt * 10))  # tenths of a point


def text_width(text: str, pt: float, mono: bool = False) -> float:
    """Width in points of one line of ``text`` at ``pt`` (DejaVu Sans metrics)."""
    return _font(pt, mono).getlength(text) / 10.0


def wrap(text: str, width: float, pt: float, mono: bool = False) -> list[str]:
    """``text`` greedily wrapped into lines no wider than ``width`` points (a word wider than a
    line is broken between characters). Explicit newlines start new lines."""
    lines: list[str] = []
    for raw in text.split("\n"):
        words = raw.split(" ")
        line = ""
        for word in words:
            trial = f"{line} {word}" if line else word
            if text_width(trial, pt, mono) <= width:
                line = trial
                continue
            if line:
                lines.append(line)
            while text_width(word, pt, mono) > width and len(word) > 1:
                k = len(word)
                while k > 1 and text_width(word[:k], pt, mono) > width:
                    k -= 1
                lines.append(word[:k])
                word = word[k:]
            line = word
        lines.append(line)
    return lines


def paragraphs_height(paras: Sequence[tuple[str, float, bool]], width: float) -> float:
    """Height in points of paragraphs ``(text, pt, mono)`` wrapped to ``width`` (frame insets not
    included), each followed by :data:`PARA_SPACE_PT`."""
    return sum(len(wrap(t, width, pt, mono)) * pt * LINE + PARA_SPACE_PT for t, pt, mono in paras)


def cut_to_fit(text: str, width: float, height: float, pt: float) -> str:
    """The longest prefix of ``text`` (whole words, then "…") whose wrapped height fits."""
    if paragraphs_height([(text, pt, False)], width) <= height:
        return text
    words = text.split(" ")
    lo, hi = 0, len(words)
    while lo < hi:  # the largest k such that words[:k] + … fits
        mid = (lo + hi + 1) // 2
        if paragraphs_height([(" ".join(words[:mid]) + ELLIPSIS, pt, False)], width) <= height:
            lo = mid
        else:
            hi = mid - 1
    return " ".join(words[:lo]) + ELLIPSIS


# ---------------------------------------------------------------------- the report, read back
@dataclass
class Block:
    kind: str  # "text" | "table" | "image" | "bullets"
    text: str = ""
    rows: list[list[str]] = field(default_factory=list)  # a table: header first
    items: list[str] = field(default_factory=list)  # bullets
    path: str = ""  # an image, relative to the report folder


@dataclass
class Page:
    title: str
    intro: list[Block]
    sections: list[tuple[str, list[Block]]]


_CELL_SPLIT = re.compile(r"(?<!\\)\|")
_IMAGE = re.compile(r"^!\[([^\]]*)\]\(([^)]+)\)$")
_ITEM = re.compile(r"^(?:[-*]|\d+\.) ")  # a list item: "- ", "* " or "1. "


def _cells(line: str) -> list[str]:
    inner = line.strip()
    inner = inner[1:] if inner.startswith("|") else inner
    inner = inner[:-1] if inner.endswith("|") and not inner.endswith("\\|") else inner
    return [c.strip().replace("\\|", "|") for c in _CELL_SPLIT.split(inner)]


def _blocks(lines: list[str]) -> list[Block]:
    chunks: list[list[str]] = [[]]
    for line in lines:
        if line.strip():
            chunks[-1].append(line)
        elif chunks[-1]:
            chunks.append([])
    out = []
    for chunk in (c for c in chunks if c):
        if chunk[0].lstrip().startswith("|"):
            rows = [_cells(x) for x in chunk if x.lstrip().startswith("|")]
            rows = [
                r for i, r in enumerate(rows) if i != 1 or not all(set(c) <= set(":-") for c in r)
            ]
            out.append(Block("table", rows=rows))
        elif len(chunk) == 1 and (m := _IMAGE.match(chunk[0].strip())):
            out.append(Block("image", text=m.group(1), path=m.group(2)))
        elif _ITEM.match(chunk[0]):
            items: list[str] = []
            for x in chunk:
                if m := _ITEM.match(x):
                    items.append(x[m.end() :].strip())
                else:
                    items[-1] += " " + x.strip()
            out.append(Block("bullets", items=items))
        elif len(chunk) == 1 and chunk[0].startswith("#"):  # a sub-heading inside a section
            out.append(Block("text", text=f"**{chunk[0].lstrip('#').strip()}**"))
        else:
            out.append(Block("text", text=" ".join(x.strip() for x in chunk)))
    return out


def parse_report(markdown: str) -> Page:
    """A generated ``README.md`` as blocks: the title, the introduction, the ``##`` sections."""
    text = re.sub(r"<!--.*?-->", "", markdown, flags=re.S)
    title, intro, sections = "", [], []
    current: list[str] = []
    name: str | None = None
    for line in text.splitlines():
        if line.startswith("# ") and not title:
            title = line[2:].strip()
        elif line.startswith("## ") or line.rstrip() == "##":
            if name is None:
                intro = _blocks(current)
            else:
                sections.append((name, _blocks(current)))
            # an untitled section continues the one before it (its figure or table)
            name, current = line[3:].strip() or (name or ""), []
        else:
            current.append(line)
    if name is None:
        intro = _blocks(current)
    else:
        sections.append((name, _blocks(current)))
    if not title:
        raise SlidesError("the report has no '# ' title line: regenerate it with its report stage")
    return Page(title, intro, sections)


# ---------------------------------------------------------------------- inline markdown
_INLINE = re.compile(r"\*\*(.+?)\*\*|`([^`]+)`|\[([^\]]+)\]\(([^)]+)\)|(?<!\w)\*([^*]+)\*(?!\w)")


def runs(text: str) -> list[tuple[str, dict[str, Any]]]:
    """``text`` with its inline Markdown (bold, code, links, italics) as styled runs."""
    out: list[tuple[str, dict[str, Any]]] = []
    pos = 0
    for m in _INLINE.finditer(text):
        if m.start() > pos:
            out.append((text[pos : m.start()], {}))
        bold, code, label, url, italic = m.groups()
        if bold is not None:
            out.extend((t, {**s, "bold": True}) for t, s in runs(bold))
        elif code is not None:
            out.append((code, {"code": True}))
        elif label is not None:
            out.append((label, {"url": url}))
        else:
            out.append((italic, {"italic": True}))
        pos = m.end()
    if pos < len(text):
        out.append((text[pos:], {}))
    return out


def plain(text: str) -> str:
    """``text`` without its inline Markdown (what is measured and matched)."""
    return "".join(t for t, _ in runs(text))


# ---------------------------------------------------------------------- the pptx side
def _pptx() -> Any:
    try:
        import pptx
    except ImportError as exc:  # pragma: no cover - a pinned dependency
        raise SlidesError(
            "python-pptx is not installed: run `make setup` (it is in requirements.lock)"
        ) from exc
    return pptx


def _emu(pt: float) -> int:
    return round(pt * EMU_PER_PT)


class Deck:
    """A 16:9 presentation written slide by slide with measured text."""

    def __init__(self, title: str) -> None:
        pptx = _pptx()
        self.prs = pptx.Presentation()
        self.prs.slide_width, self.prs.slide_height = _emu(SLIDE_W_PT), _emu(SLIDE_H_PT)
        self.blank = self.prs.slide_layouts[6]
        props = self.prs.core_properties
        props.title, props.author = title, "generated by the replication pipeline"
        props.created = props.modified = props.last_printed = GENERATED
        props.revision = 1
        self.footer = ""

    # ------------------------------------------------------------------ primitives
    def slide(self, title: str | None, notes: str = "") -> Any:
        s = self.prs.slides.add_slide(self.blank)
        if title:
            width = SLIDE_W_PT - 2 * MARGIN_PT - 2 * INSET_X_PT
            room, pt = TITLE_H_PT - 2 * INSET_Y_PT, TITLE_PT
            while pt > 22 and paragraphs_height([(title, pt, False)], width) > room:
                pt -= 2
            text = cut_to_fit(title, width, room, pt)
            self.text(s, MARGIN_PT, TITLE_TOP_PT, SLIDE_W_PT - 2 * MARGIN_PT, TITLE_H_PT,
                      [text], pt=pt, bold=True, color=DARK, anchor="bottom")  # fmt: skip
        if self.footer:
            self.text(s, MARGIN_PT, SLIDE_H_PT - FOOTER_H_PT, SLIDE_W_PT - 2 * MARGIN_PT,
                      FOOTER_H_PT, [self.footer], pt=10, color=GREY)  # fmt: skip
        if notes:
            s.notes_slide.notes_text_frame.text = notes
        return s

    def text(
        self,
        slide: Any,
        left: float,
        top: float,
        width: float,
        height: float,
        paras: Sequence[str],
        *,
        pt: float = BODY_PT,
        bold: bool = False,
        color: tuple[int, int, int] | None = None,
        mono: bool = False,
        bullet: bool = False,
        anchor: str = "top",
        align: str = "left",
    ) -> Any:
        pptx = _pptx()
        from pptx.dml.color import RGBColor
        from pptx.enum.text import MSO_ANCHOR, PP_ALIGN
        from pptx.util import Pt

        box = slide.shapes.add_textbox(_emu(left), _emu(top), _emu(width), _emu(height))
        tf = box.text_frame
        tf.word_wrap = True
        tf.auto_size = pptx.enum.text.MSO_AUTO_SIZE.NONE
        tf.margin_left = tf.margin_right = _emu(INSET_X_PT)
        tf.margin_top = tf.margin_bottom = _emu(INSET_Y_PT)
        tf.vertical_anchor = {"top": MSO_ANCHOR.TOP, "bottom": MSO_ANCHOR.BOTTOM,
                              "middle": MSO_ANCHOR.MIDDLE}[anchor]  # fmt: skip
        for i, para in enumerate(paras):
            p = tf.paragraphs[0] if i == 0 else tf.add_paragraph()
            p.alignment = {"left": PP_ALIGN.LEFT, "center": PP_ALIGN.CENTER}[align]
            p.space_after = Pt(PARA_SPACE_PT)
            p.line_spacing = 1.0
            pieces = [("• ", {})] if bullet else []
            pieces += [(para, {})] if mono else runs(para)
            for t, style in pieces:
                r = p.add_run()
                r.text = t
                f = r.font
                f.size = Pt(pt)
                f.name = MONO if (mono or style.get("code")) else FONT
                f.bold = bold or style.get("bold", False)
                f.italic = style.get("italic", False)
                if color is not None:
                    f.color.rgb = RGBColor(*color)
                if style.get("url"):
                    r.hyperlink.address = style["url"]
        return box

    def picture(
        self, slide: Any, path: Path, left: float, top: float, width: float, height: float
    ) -> Any:
        from PIL import Image

        with Image.open(path) as im:
            w, h = im.size
        scale = min(width / w, height / h)
        pw, ph = w * scale, h * scale
        return slide.shapes.add_picture(
            str(path),
            _emu(left + (width - pw) / 2),
            _emu(top + (height - ph) / 2),
            _emu(pw),
            _emu(ph),
        )

    def save(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        self.prs.save(str(tmp))
        _fix_zip_times(tmp)
        tmp.replace(path)
        return path

    # ------------------------------------------------------------------ composite slides
    def bullets(
        self, title: str, items: Sequence[str], notes: str = "", pt: float = BODY_PT
    ) -> int:
        """Bullet slides (as many as the items need); returns how many were made."""
        width = SLIDE_W_PT - 2 * MARGIN_PT
        height = BODY_BOTTOM_PT - BODY_TOP_PT
        inner_w, inner_h = width - 2 * INSET_X_PT, height - 2 * INSET_Y_PT
        pages: list[list[str]] = [[]]
        used = 0.0
        for item in items:
            text = cut_to_fit(item, inner_w - text_width("• ", pt), inner_h, pt)
            h = paragraphs_height([("• " + plain(text), pt, False)], inner_w)
            if pages[-1] and used + h > inner_h:
                pages.append([])
                used = 0.0
            pages[-1].append(text)
            used += h
        for i, page in enumerate(pages):
            name = title if len(pages) == 1 else f"{title} ({i + 1}/{len(pages)})"
            s = self.slide(name, notes)
            self.text(s, MARGIN_PT, BODY_TOP_PT, width, height, page, pt=pt, bullet=True)
        return len(pages)

    def table(
        self,
        title: str,
        rows: Sequence[Sequence[str]],
        *,
        caption: str = "",
        notes: str = "",
        colors: Sequence[tuple[int, int, int] | None] | None = None,
        color_col: int | None = None,
    ) -> int:
        """``rows`` (header first) across as many slides as they need: columns that do not fit
        side by side are split (the first column repeated), rows paginated; the caption under
        each part. ``colors[i]`` colours row i's ``color_col`` cell. Returns the slides made."""
        header, body = [plain(c) for c in rows[0]], [[plain(c) for c in r] for r in rows[1:]]
        width = SLIDE_W_PT - 2 * MARGIN_PT
        caption, cap_h = _caption(caption, width)
        avail_h = BODY_BOTTOM_PT - BODY_TOP_PT - cap_h
        parts = _column_parts(header, body, width)
        made = 0
        pages_all = []
        for cols, widths, pt in parts:
            sub = [[r[c] if c < len(r) else "" for c in cols] for r in [header, *body]]
            heights = [_row_height(r, widths, pt) for r in sub]
            pages, cur, used = [], [], heights[0]
            for i, h in enumerate(heights[1:], start=1):
                if h + heights[0] > avail_h:  # one row alone is too tall: cut its cells
                    sub[i] = [
                        _cut_cell(c, w, avail_h - heights[0], pt)
                        for c, w in zip(sub[i], widths, strict=True)
                    ]
                    h = heights[i] = _row_height(sub[i], widths, pt)
                if cur and (used + h > avail_h or len(cur) >= ROWS_MAX):
                    pages.append(cur)
                    cur, used = [], heights[0]
                cur.append(i)
                used += h
            pages.append(cur)
            pages = _balanced(pages, heights, avail_h)
            pages_all.append((cols, widths, pt, sub, heights, pages))
        total = sum(len(p[-1]) for p in pages_all)
        for cols, widths, pt, sub, heights, pages in pages_all:
            for idx in pages:
                made += 1
                name = title if total == 1 else f"{title} ({made}/{total})"
                s = self.slide(name, notes)
                shown = [0, *idx]
                self._table_shape(s, [sub[i] for i in shown], widths, [heights[i] for i in shown], pt,
                                  [None if colors is None or i == 0 else colors[i - 1] for i in shown],
                                  None if color_col is None or color_col not in cols else cols.index(color_col))  # fmt: skip
                if caption:
                    top = BODY_TOP_PT + sum(heights[i] for i in shown) + 4
                    self.text(s, MARGIN_PT, top, width, cap_h, [caption], pt=CAPTION_PT, color=GREY)
        return made

    def _table_shape(self, slide: Any, rows: list[list[str]], widths: list[float],
                     heights: list[float], pt: float, colors: list, color_col: int | None) -> Any:  # fmt: skip
        from pptx.dml.color import RGBColor
        from pptx.util import Pt

        shape = slide.shapes.add_table(len(rows), len(widths), _emu(MARGIN_PT), _emu(BODY_TOP_PT),
                                       _emu(sum(widths)), _emu(sum(heights)))  # fmt: skip
        t = shape.table
        for j, w in enumerate(widths):
            t.columns[j].width = _emu(w)
        for i, (row, h) in enumerate(zip(rows, heights, strict=True)):
            t.rows[i].height = _emu(h)
            for j, text in enumerate(row):
                c = t.cell(i, j)
                c.margin_left = c.margin_right = _emu(CELL_X_PT)
                c.margin_top = c.margin_bottom = _emu(CELL_Y_PT)
                tf = c.text_frame
                tf.word_wrap = True
                p = tf.paragraphs[0]
                p.line_spacing = 1.0
                r = p.add_run()
                r.text = text
                r.font.size = Pt(pt)
                r.font.name = FONT
                r.font.bold = i == 0
                if colors[i] is not None and j == color_col:
                    r.font.color.rgb = RGBColor(*colors[i])
                    r.font.bold = True
        return shape

    def figure(self, title: str, path: Path, caption: str = "", notes: str = "") -> None:
        s = self.slide(title, notes)
        width = SLIDE_W_PT - 2 * MARGIN_PT
        caption, cap_h = _caption(caption, width)
        if caption:
            self.text(s, MARGIN_PT, BODY_BOTTOM_PT - cap_h, width, cap_h, [caption], pt=CAPTION_PT,
                      color=GREY, align="center")  # fmt: skip
        self.picture(
            s, path, MARGIN_PT, BODY_TOP_PT, width, BODY_BOTTOM_PT - BODY_TOP_PT - cap_h - 4
        )


def _caption(caption: str, width: float) -> tuple[str, float]:
    """A caption cut to two lines of :data:`CAPTION_PT` in a box ``width`` wide, and the box's
    height (0 without a caption)."""
    if not caption:
        return "", 0.0
    inner = width - 2 * INSET_X_PT
    text = cut_to_fit(plain(caption), inner, 2 * CAPTION_PT * LINE + PARA_SPACE_PT, CAPTION_PT)
    return text, paragraphs_height([(text, CAPTION_PT, False)], inner) + 2 * INSET_Y_PT


def _fix_zip_times(path: Path) -> None:
    """Rewrite the zip with fixed entry times, so the same deck is the same bytes."""
    with zipfile.ZipFile(path) as z:
        entries = [(i, z.read(i.filename)) for i in z.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for info, data in entries:
            fixed = zipfile.ZipInfo(info.filename, date_time=GENERATED.timetuple()[:6])
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = info.external_attr
            z.writestr(fixed, data)


def _balanced(pages: list[list[int]], heights: Sequence[float], avail: float) -> list[list[int]]:
    """The same rows over the same number of slides, spread evenly (no slide of one leftover row)
    where the heights allow: at most ``ceil(rows / slides)`` rows per slide."""
    rows = [i for p in pages for i in p]
    if len(pages) < 2:
        return pages
    cap = math.ceil(len(rows) / len(pages))
    out, cur, used = [], [], heights[0]
    for i in rows:
        if cur and (used + heights[i] > avail or len(cur) >= cap):
            out.append(cur)
            cur, used = [], heights[0]
        cur.append(i)
        used += heights[i]
    out.append(cur)
    return out if len(out) == len(pages) else pages


def _row_height(row: Sequence[str], widths: Sequence[float], pt: float) -> float:
    lines = max(len(wrap(c, w - 2 * CELL_X_PT, pt)) for c, w in zip(row, widths, strict=True))
    return lines * pt * LINE + 2 * CELL_Y_PT + 2


def _cut_cell(text: str, width: float, height: float, pt: float) -> str:
    return cut_to_fit(text, width - 2 * CELL_X_PT, height - 2 * CELL_Y_PT - 2, pt)


def _column_widths(cols: Sequence[Sequence[str]], avail: float, pt: float) -> list[float] | None:
    """Widths for columns (each a list of cell texts) within ``avail`` points: every column at
    least its longest word, the rest shared in proportion to what a column needs on one line;
    ``None`` when even the longest words do not fit side by side."""
    pad = 2 * CELL_X_PT + 1
    least = [
        max(text_width(w, pt) for c in col for w in (c.split(" ") or [""])) + pad for col in cols
    ]
    want = [
        max(max(text_width(c, pt) for c in col) + pad, m)
        for col, m in zip(cols, least, strict=True)
    ]
    if sum(least) > avail:
        return None
    if sum(want) <= avail:
        extra = (avail - sum(want)) / len(want) if sum(want) < 0.6 * avail else 0.0
        return [w + extra for w in want]
    spare = avail - sum(least)
    need = [w - m for w, m in zip(want, least, strict=True)]
    return [m + spare * n / sum(need) for m, n in zip(least, need, strict=True)]


def _column_parts(header: list[str], body: list[list[str]], avail: float) -> list[tuple[list[int], list[float], float]]:  # fmt: skip
    """The table's columns in parts that fit side by side (the first column in every part), each
    with its widths and type size: the whole table when it fits at :data:`TABLE_PT` or
    :data:`TABLE_MIN_PT`, otherwise as many columns per part as fit."""
    n = len(header)
    col = [[header[j], *(r[j] if j < len(r) else "" for r in body)] for j in range(n)]
    for pt in (TABLE_PT, TABLE_MIN_PT):
        if (w := _column_widths(col, avail, pt)) is not None:
            return [(list(range(n)), w, pt)]
    pt = TABLE_MIN_PT
    parts, cur = [], [0]
    for j in range(1, n):
        trial = [*cur, j]
        if _column_widths([col[c] for c in trial], avail, pt) is None and len(cur) > 1:
            parts.append(cur)
            cur = [0, j]
        else:
            cur = trial
    parts.append(cur)
    out = []
    for cols in parts:
        w = _column_widths([col[c] for c in cols], avail, pt)
        if w is None:  # a single column of long words: cut at the slide's width
            w = [avail / len(cols)] * len(cols)
        out.append((cols, w, pt))
    return out


# ---------------------------------------------------------------------- claims
def _num(value: Any) -> str:
    from common.report.markdown import fmt

    return fmt(value)


def claim_cells(c: dict[str, Any]) -> list[str]:
    """A claim's row on the slides: description, paper, ours, verdict (as ``claims.json``)."""
    unit = c.get("unit") or ""
    u = "×" if unit == "x" else (f" {unit}" if unit else "")
    ours = "–" if c.get("ours") is None else f"{_num(c['ours'])}{u}"
    return [c["description"], f"{_num(c['paper'])}{u}", ours, verdict_label(c)]


def verdict_label(c: dict[str, Any]) -> str:
    if c.get("ours") is None:
        return "not measured"
    kind, ok = c.get("kind", "result"), bool(c.get("reproduced"))
    if kind == "setting":
        return "setting (as set)" if ok else "setting (differs)"
    if kind == "architecture":
        return "architecture (same)" if ok else "architecture (differs)"
    return "reproduced" if ok else "not reproduced"


def _verdict_color(c: dict[str, Any]) -> tuple[int, int, int] | None:
    if c.get("ours") is None or c.get("kind", "result") != "result":
        return GREY
    return GREEN if c.get("reproduced") else RED


def read_claims(path: Path) -> dict[str, Any]:
    """``claims.json`` checked to be a claims record (one clear error otherwise)."""
    fix = "regenerate it with the paper's report stage (`dvc repro`)"
    if not path.is_file():
        raise SlidesError(f"{path} not found: {fix}")
    try:
        data = json.loads(path.read_text())
        claims = data["claims"]
        for c in claims:
            c["id"], c["description"], c["paper"], c["kind"]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as exc:
        raise SlidesError(
            f"{path} is not a claims.json ({type(exc).__name__}: {exc}): {fix}"
        ) from None
    return data


def _count(claims: Sequence[dict[str, Any]]) -> tuple[int, int]:
    from common.report.claims import count_results

    return count_results(list(claims))


# ---------------------------------------------------------------------- a paper's deck
SKIP = {"Claims: the paper beside ours", "What was scaled down"}


PROSE = 90  # characters: a column whose cells average more is prose, read from the notes


def prose_columns(rows: Sequence[Sequence[str]]) -> tuple[list[list[str]], list[str]]:
    """``rows`` without their prose columns (not the first; cells of :data:`PROSE` characters on
    average), and those columns' headers; the notes carry the whole table."""
    header, body = rows[0], rows[1:]
    prose = {
        j
        for j in range(1, len(header))
        if body and sum(len(plain(r[j])) if j < len(r) else 0 for r in body) / len(body) > PROSE
    }
    keep = [j for j in range(len(header)) if j not in prose]
    return [[r[j] if j < len(r) else "" for j in keep] for r in rows], [
        plain(header[j]) for j in sorted(prose)
    ]


def _sentences(text: str) -> list[str]:
    parts = re.split(r"(?<=[.!?])\s+(?=[A-Z(\[*`])", plain(text).strip())
    return [p for p in parts if p]


def _notes(blocks: Iterable[Block]) -> str:
    out = []
    for b in blocks:
        if b.kind == "text":
            out.append(plain(b.text))
        elif b.kind == "bullets":
            out.extend(f"- {plain(i)}" for i in b.items)
        elif b.kind == "table":
            out.append("\n".join(" | ".join(plain(c) for c in r) for r in b.rows))
    return "\n\n".join(out)


def paper_deck(slug: str, report: Path, out: Path) -> Path:
    """``report``'s deck (``reports/<slug>``: README.md, claims.json, figures/) to ``out``."""
    from common.papers import papers

    meta = next((p for p in papers(planned=True) if p.slug == slug), None)
    if meta is None:
        raise SlidesError(f"{slug!r} is not a paper of papers/registry.yaml")
    readme = report / "README.md"
    if not readme.is_file():
        raise SlidesError(
            f"{readme} not found: run the paper's report stage first "
            f"(`dvc repro papers/{slug}/dvc.yaml`)"
        )
    page = parse_report(readme.read_text())
    data = read_claims(report / "claims.json")
    claims = data["claims"]
    ok, total = _count(claims)
    deck = Deck(f"{meta.title}: paper review")
    # title
    s = deck.slide(None, notes=f"{page.title}\n\nGenerated from reports/{slug}/ by the pipeline.")
    deck.text(s, MARGIN_PT, 120, SLIDE_W_PT - 2 * MARGIN_PT, 110, [meta.title], pt=44, bold=True,
              color=DARK, anchor="bottom")  # fmt: skip
    lines = [meta.citation, meta.url,
             f"Replication at the {data['profile']} profile: {ok} of {total} results reproduced"]  # fmt: skip
    deck.text(s, MARGIN_PT, 250, SLIDE_W_PT - 2 * MARGIN_PT, 200, lines, pt=24, color=GREY)
    deck.footer = f"{meta.title} · {meta.citation} · reports/{slug}/"
    # the idea
    intro = [b for b in page.intro if b.kind == "text"]
    idea = [x for b in intro[:1] for x in _sentences(b.text)]
    if idea:
        deck.bullets("The idea", idea, notes=_notes(page.intro))
    # the claims
    rows = [["Claim", "Paper", "Ours", "Verdict"], *(claim_cells(c) for c in claims)]
    cnotes = "\n".join(
        f"{c['id']} ({c.get('source', '')}): {verdict_label(c)}. Scale: {c.get('scale', '')}."
        + (f" {c['note']}" if c.get("note") else "")
        for c in claims
    )
    if claims:
        deck.table(
            "Claims: the paper beside ours",
            rows,
            caption=f"{data['profile']} profile: {ok} of {total} results reproduced. Settings "
            "copied from the paper and architecture checks are not counted. Each claim's scale is "
            "in the notes.",
            notes=cnotes,
            colors=[_verdict_color(c) for c in claims],
            color_col=3,
        )
    # the report's sections: tables and figures, text in bullets
    for name, blocks in page.sections:
        if name in SKIP:
            continue
        notes = _notes(blocks)
        texts = [b for b in blocks if b.kind == "text"]
        shown = False
        for b in blocks:
            if b.kind == "table" and len(b.rows) > 1:
                rows, moved = prose_columns(b.rows)
                lead = _sentences(texts[0].text)[0] if texts else ""
                if moved:
                    lead = (
                        f"{lead} {'Column' if len(moved) == 1 else 'Columns'} "
                        f"{', '.join(repr(m) for m in moved)} in the notes."
                    ).strip()
                deck.table(name, rows, caption=lead, notes=notes)
                shown = True
            elif b.kind == "image":
                path = report / b.path
                if not path.is_file():
                    raise SlidesError(
                        f"{path} (a figure of the report) not found: regenerate the report"
                    )
                deck.figure(name or b.text, path, caption=b.text, notes=notes)
                shown = True
        if not shown:
            items = [
                i
                for b in blocks
                for i in (
                    b.items
                    if b.kind == "bullets"
                    else _sentences(b.text)
                    if b.kind == "text"
                    else []
                )
            ]
            if items:
                deck.bullets(name, items, notes=notes)
    # scaled down, not reproduced, reproduce it
    scaled = next(
        (
            b
            for n, bl in page.sections
            if n == "What was scaled down"
            for b in bl
            if b.kind == "bullets"
        ),
        None,
    )
    if scaled is not None:
        deck.bullets("What was scaled down, and why", scaled.items, notes=_notes([scaled]))
    results = [c for c in claims if c.get("kind", "result") == "result"]
    missed = [c for c in results if not c.get("reproduced") and c.get("ours") is not None]
    unmeasured = [c for c in results if c.get("ours") is None]
    items = [
        f"{c['description']}: paper {claim_cells(c)[1]}, ours {claim_cells(c)[2]}."
        + (f" {c['note']}" if c.get("note") else "")
        for c in missed
    ]
    if unmeasured:
        items.append(
            f"Not measured at the {data['profile']} profile ({len(unmeasured)}): "
            + "; ".join(c["description"] for c in unmeasured)
            + ". The pipeline produces them at another profile (see each claim's scale)."
        )
    if items:
        deck.bullets("Not reproduced, and why", items, notes="\n\n".join(items), pt=18)
    deck.bullets(
        "Reproduce it",
        [
            "`make setup` (once: the virtual environment and the microcontroller toolchain)",
            f"`make repro PAPER={slug}` (this paper's pipeline at the profile in params.yaml)",
            f"`make repro PAPER={slug} PROFILE=smoke` (the same stages in seconds)",
            f"`dvc repro papers/{slug}/dvc.yaml` (the same through DVC)",
            "`make slides` (this deck again, and a PDF when LibreOffice is installed)",
            f"Report: `reports/{slug}/README.md`; claims as data: `reports/{slug}/claims.json`",
        ],
        notes=f"Profile switch for one paper: dvc exp run -S profile.{slug}=paper (the paper's scale).",
    )
    return deck.save(out)


# ---------------------------------------------------------------------- the course deck
HEADLINE = 3  # result claims shown per paper


def course_deck(claims_files: Sequence[Path], out: Path) -> Path:
    """One summary slide per paper with a report: results reproduced and its first measured
    result claims (paper beside ours), in the registry's order."""
    from common.papers import papers

    found = {}
    for path in claims_files:
        data = read_claims(path)
        found[data.get("paper", path.parent.name)] = data
    deck = Deck("Efficient deep learning, replicated")
    s = deck.slide(None)
    deck.text(s, MARGIN_PT, 120, SLIDE_W_PT - 2 * MARGIN_PT, 110,
              ["Efficient deep learning, replicated"], pt=44, bold=True, color=DARK, anchor="bottom")  # fmt: skip
    listed = [p for p in papers(planned=True) if p.slug in found]
    summary = [
        f"{len(listed)} papers, each run end to end by its pipeline; every number from claims.json"
    ]
    deck.text(s, MARGIN_PT, 250, SLIDE_W_PT - 2 * MARGIN_PT, 200, summary, pt=24, color=GREY)
    for p in listed:
        data = found[p.slug]
        ok, total = _count(data["claims"])
        results = [c for c in data["claims"] if c.get("kind", "result") == "result"]
        measured = [c for c in results if c.get("ours") is not None]
        results = (measured or results)[:HEADLINE]
        deck.footer = f"{p.title} · {p.citation} · reports/{p.slug}/"
        rows = [["Claim", "Paper", "Ours", "Verdict"], *(claim_cells(c) for c in results)]
        deck.table(
            f"{p.title}: {ok} of {total} results reproduced",
            rows,
            caption=f"{p.citation} · {data['profile']} profile · the report's first "
            f"{len(results)} measured result claims; all of them in reports/{p.slug}/slides.pptx",
            notes=f"{p.url}\nReport: reports/{p.slug}/README.md",
            colors=[_verdict_color(c) for c in results],
            color_col=3,
        )
    return deck.save(out)


# ---------------------------------------------------------------------- checking a deck
def check_fit(path: Path) -> list[str]:
    """Every text box, table and picture of a saved deck measured: within the slide, and its text
    within its box at its own type size. Returns the problems (empty: the deck fits)."""
    pptx = _pptx()
    prs = pptx.Presentation(str(path))
    W, H = prs.slide_width / EMU_PER_PT, prs.slide_height / EMU_PER_PT
    problems = []
    for n, slide in enumerate(prs.slides, start=1):
        for shape in slide.shapes:
            left, top = shape.left / EMU_PER_PT, shape.top / EMU_PER_PT
            w, h = shape.width / EMU_PER_PT, shape.height / EMU_PER_PT
            if left < -0.5 or top < -0.5 or left + w > W + 0.5 or top + h > H + 0.5:
                problems.append(f"slide {n}: {shape.shape_type} outside the slide")
            if shape.has_text_frame:
                tf = shape.text_frame
                inner = w - (tf.margin_left + tf.margin_right) / EMU_PER_PT
                paras = [
                    ("".join(r.text for r in p.runs), _size(p), _is_mono(p)) for p in tf.paragraphs
                ]
                need = (
                    paragraphs_height(paras, inner)
                    + (tf.margin_top + tf.margin_bottom) / EMU_PER_PT
                )
                if need > h + 0.5:
                    problems.append(
                        f"slide {n}: text needs {need:.0f} pt in a {h:.0f} pt box: {paras[0][0][:40]!r}"
                    )
            if shape.has_table:
                t = shape.table
                for i, row in enumerate(t.rows):
                    for j, c in enumerate(row.cells):
                        cw = (
                            t.columns[j].width / EMU_PER_PT
                            - (c.margin_left + c.margin_right) / EMU_PER_PT
                        )
                        for p in c.text_frame.paragraphs:
                            text = "".join(r.text for r in p.runs)
                            lines = len(wrap(text, cw, _size(p)))
                            need = (
                                lines * _size(p) * LINE
                                + (c.margin_top + c.margin_bottom) / EMU_PER_PT
                            )
                            if need > row.height / EMU_PER_PT + 0.5:
                                problems.append(
                                    f"slide {n}: table cell ({i}, {j}) needs {need:.0f} pt in a {row.height / EMU_PER_PT:.0f} pt row"
                                )
                rows_h = sum(r.height for r in t.rows) / EMU_PER_PT
                if top + rows_h > H + 0.5:
                    problems.append(
                        f"slide {n}: table runs {top + rows_h - H:.0f} pt below the slide"
                    )
    return problems


def _size(p: Any) -> float:
    sizes = [r.font.size.pt for r in p.runs if r.font.size is not None]
    return max(sizes) if sizes else 18.0


def _is_mono(p: Any) -> bool:
    return any(r.font.name == MONO for r in p.runs)


# ---------------------------------------------------------------------- PDF
SOFFICE_INSTALL = "sudo apt-get install -y --no-install-recommends libreoffice-impress"


def soffice() -> str | None:
    return shutil.which("soffice") or shutil.which("libreoffice")


def to_pdf(deck: Path, outdir: Path | None = None) -> Path | None:
    """The deck as PDF through LibreOffice (``None``, with the install command printed, when
    LibreOffice is not installed)."""
    exe = soffice()
    if exe is None:
        print(f"LibreOffice not found: no PDF of {deck}. Install it with:  {SOFFICE_INSTALL}")
        return None
    outdir = outdir or deck.parent
    proc = subprocess.run(
        [exe, "--headless", "--convert-to", "pdf", "--outdir", str(outdir), str(deck)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    pdf = outdir / (deck.stem + ".pdf")
    if proc.returncode != 0 or not pdf.is_file():
        raise SlidesError(f"LibreOffice could not convert {deck}: {proc.stderr.strip()[-300:]}")
    return pdf


def pdf_pages(pdf: Path) -> int:
    """Pages of a PDF (its ``/Type /Page`` objects)."""
    return len(re.findall(rb"/Type\s*/Page(?![s\w])", pdf.read_bytes()))


def slide_count(deck: Path) -> int:
    return len(_pptx().Presentation(str(deck)).slides)


# ---------------------------------------------------------------------- command line
def _paper_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("slug", help="the paper (papers/registry.yaml)")
    parser.add_argument("--report", type=Path, required=True, help="reports/<slug>")
    parser.add_argument("--out", type=Path, required=True, help="reports/<slug>/slides.pptx")


def _course_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("claims", nargs="+", type=Path, help="reports/<paper>/claims.json files")
    parser.add_argument("--out", type=Path, required=True, help="reports/course.pptx")


def _stages() -> tuple[Any, Any]:
    """The two pipeline stages (MLflow runs of the ``reports`` experiment, the deck an artifact)."""
    from common.stage import StageContext, stage

    @stage(section="reports", name=lambda a: f"{a.slug}_slides", config=None, flags=_paper_flags)
    def paper(ctx: StageContext) -> None:
        """Stage <paper>_slides: the paper-review deck of reports/<paper>/."""
        out = paper_deck(ctx.args.slug, ctx.args.report, ctx.args.out)
        n = slide_count(out)
        ctx.finish({"slides": float(n)}, artifacts=[out], summary=f"wrote {out}: {n} slides")

    @stage(section="reports", name="course_slides", config=None, flags=_course_flags)
    def course(ctx: StageContext) -> None:
        """Stage course_slides: one summary slide per paper."""
        out = course_deck(ctx.args.claims, ctx.args.out)
        n = slide_count(out)
        ctx.finish({"slides": float(n)}, artifacts=[out], summary=f"wrote {out}: {n} slides")

    return paper, course


USAGE = """usage: python -m common.slides paper <slug> --report reports/<slug> --out reports/<slug>/slides.pptx
       python -m common.slides course --out reports/course.pptx reports/<paper>/claims.json ...
       python -m common.slides all [--reports reports] [--pdf]
       python -m common.slides pdf <deck.pptx> ..."""


def main(argv: list[str] | None = None) -> int:
    """``paper`` and ``course`` are the pipeline's stages; ``all`` (``make slides``) builds every
    deck whose report exists and the course deck, ``pdf`` exports decks through LibreOffice."""
    argv = list(sys.argv[1:] if argv is None else argv)
    what, rest = (argv[0], argv[1:]) if argv else ("", [])
    if what in ("paper", "course"):
        paper, course = _stages()
        return (paper if what == "paper" else course)(rest)
    if what not in ("all", "pdf"):
        print(USAGE, file=sys.stderr)
        return 2
    parser = argparse.ArgumentParser(prog=f"python -m common.slides {what}")
    if what == "all":
        parser.add_argument("--reports", type=Path, default=Path("reports"))
        parser.add_argument("--pdf", action="store_true", help="also export PDFs (LibreOffice)")
    else:
        parser.add_argument("decks", nargs="+", type=Path)
    args = parser.parse_args(rest)
    try:
        if what == "all":
            from common.papers import papers

            made = []
            for p in papers():
                folder = args.reports / p.slug
                if (folder / "README.md").is_file() and (folder / "claims.json").is_file():
                    made.append(paper_deck(p.slug, folder, folder / "slides.pptx"))
                    print(f"wrote {made[-1]}: {slide_count(made[-1])} slides")
            claims = [m.parent / "claims.json" for m in made]
            if claims:
                made.append(course_deck(claims, args.reports / "course.pptx"))
                print(f"wrote {made[-1]}: {slide_count(made[-1])} slides")
            else:
                print(f"no reports under {args.reports}: run `make repro` first")
            decks = made if args.pdf else []
        else:
            decks = args.decks
        for deck in decks:
            if not deck.is_file():
                raise SlidesError(f"{deck} not found: build it with `make slides`")
            if (pdf := to_pdf(deck)) is None:
                break
            print(f"wrote {pdf}: {pdf_pages(pdf)} pages")
    except (InputError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
