"""Paper-review decks (common/slides.py) from a report folder written by the real report code:
every claim on a slide with its value and verdict, every figure on a slide, no text outside its
box, a deck that opens again, the same bytes twice, one-line errors, and the PDF's page count."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.pyplot as plt
import pptx
import pytest

from common import slides
from common.report.claims import ClaimResult, write_claims_json
from common.report.markdown import Section, render_page, table

SLUG = "mcunet"  # a registered paper (title and citation from papers/registry.yaml)


def claim(i: int, kind: str = "result", ours: float | None = 1.5, ok: bool = True) -> ClaimResult:
    return ClaimResult(
        id=f"table{i // 10}.row{i}.value",
        kind=kind,
        source="Table 2",
        description=f"Network {i}: peak activation memory, the interpreter's arena over ours"
        + (" on the paper's largest model at 224 px" if i % 3 == 0 else ""),
        metric=f"m{i}",
        unit="x" if i % 2 else "%",
        paper=3.4 + i,
        ours=ours,
        difference=None if ours is None else ours - 3.4 - i,
        tolerance=0.5,
        check="within",
        reproduced=ok,
        scale="default profile; 10 classes instead of 1000",
        note="" if ok else "the paper compares with CMSIS-NN, which is not available offline",
    )


CLAIMS = [
    *(claim(i, ok=i % 4 != 1) for i in range(17)),
    claim(20, kind="setting", ok=True),
    claim(21, kind="architecture", ok=False),
    claim(22, ours=None, ok=False),
]


def make_report(folder: Path) -> list[Path]:
    """A report folder as the report stage writes it: README.md, claims.json, two figures."""
    figs = folder / "figures"
    figs.mkdir(parents=True)
    paths = []
    for name, size in (("wide.png", (12, 3)), ("tall.png", (4, 8))):
        fig, ax = plt.subplots(figsize=size)
        ax.plot([0, 1, 2], [2, 1, 3])
        fig.savefig(figs / name, dpi=60)
        plt.close(fig)
        paths.append(figs / name)
    wide = table(
        ["Model", *(f"Engine {j} with a long header" for j in range(8))],
        [[f"model-{i}", *(f"{1000 * i + j:,} kB ({j}x)" for j in range(8))] for i in range(30)],
    )
    long_text = " ".join(
        f"Sentence {k} explains a detail of the measurement at some length." for k in range(40)
    )
    sections = [
        Section(
            "A long and wide table",
            f"What the table shows. More words here.\n\n{wide}\n\nA note under it.",
        ),
        Section("A figure", "![the wide curve](figures/wide.png)"),
        Section(
            "Two parts",
            f"Intro text.\n\n![the tall curve](figures/tall.png)\n\n{table(['a', 'b'], [[1, 2]])}",
        ),
        Section("Only words", long_text),
        Section(
            "Steps", "### How it runs\n\n1. first the data\n2. then the model,\n   in two lines"
        ),
        Section(
            "Targets",
            table(
                ["Target", "Goal", "Note"],
                [
                    [
                        f"target {i}",
                        f"≥ {i}x",
                        f"why target {i} matters: " + "a long explanation " * 8,
                    ]
                    for i in range(3)
                ],
            ),
        ),
    ]
    page = render_page(
        title="MCUNet: replication report",
        stage=f"{SLUG}_report",
        intro="The engine runs int8 networks on microcontrollers. It plans memory per layer. "
        "Here every stage runs end to end: [the code](../../common/mcu/).",
        profile="default",
        results=CLAIMS,
        sections=sections,
        scaled_down=[
            "Data: colour digits instead of ImageNet. " * 12,
            "Hardware: an emulated Cortex-M7.",
        ],
    )
    (folder / "README.md").write_text(page)
    write_claims_json(
        CLAIMS, folder / "claims.json", paper=SLUG, profile="default", generated_by="t"
    )
    return paths


@pytest.fixture
def deck(tmp_path: Path) -> tuple[Path, Path, list[Path]]:
    folder = tmp_path / "report"
    figures = make_report(folder)
    out = slides.paper_deck(SLUG, folder, tmp_path / "slides.pptx")
    return out, folder, figures


def table_rows(prs: pptx.presentation.Presentation, title_prefix: str) -> list[list[str]]:
    rows = []
    for s in prs.slides:
        texts = [sh.text_frame.text for sh in s.shapes if sh.has_text_frame]
        if texts and texts[0].startswith(title_prefix):
            t = next(sh.table for sh in s.shapes if sh.has_table)
            rows += [[c.text for c in r.cells] for r in list(t.rows)[1:]]
    return rows


def test_every_claim_is_on_a_slide_with_its_value_and_verdict(deck) -> None:
    out, folder, _ = deck
    prs = pptx.Presentation(str(out))
    data = json.loads((folder / "claims.json").read_text())
    rows = table_rows(prs, "Claims: the paper beside ours")
    assert len(rows) == len(data["claims"]) and len(rows) > slides.ROWS_MAX  # split over slides
    for row, c in zip(rows, data["claims"], strict=True):
        assert row == slides.claim_cells(c)
        unit = "×" if c["unit"] == "x" else " %"
        assert row[1] == f"{slides._num(c['paper'])}{unit}"
        if c["ours"] is not None:
            assert row[2] == f"{slides._num(c['ours'])}{unit}"
        want = {
            ("result", True): "reproduced",
            ("result", False): "not reproduced",
            ("setting", True): "setting (as set)",
            ("architecture", False): "architecture (differs)",
        }
        assert row[3] == (
            "not measured" if c["ours"] is None else want[(c["kind"], c["reproduced"])]
        )
    # the not-reproduced slide names every missed result with its reason
    missed = [c for c in data["claims"] if c["kind"] == "result" and not c["reproduced"]]
    text = "\n".join(
        sh.text_frame.text
        for s in prs.slides
        for sh in s.shapes
        if sh.has_text_frame and s.shapes[0].text_frame.text.startswith("Not reproduced")
    )
    for c in missed:
        assert c["description"] in text


def test_every_figure_and_table_of_the_report_is_on_a_slide(deck) -> None:
    out, _, figures = deck
    prs = pptx.Presentation(str(out))
    blobs = [sh.image.blob for s in prs.slides for sh in s.shapes if sh.shape_type == 13]
    for path in figures:
        assert path.read_bytes() in blobs, path.name
    for s in prs.slides:  # pictures keep their aspect ratio
        for sh in s.shapes:
            if sh.shape_type == 13:
                w, h = sh.image.size
                assert sh.width / sh.height == pytest.approx(w / h, rel=0.01)
    # the 30 x 9 table: columns split (the first column in every part), rows split, all there
    rows = table_rows(prs, "A long and wide table")
    first = [r[0] for r in rows]
    assert sorted(set(first)) == sorted(f"model-{i}" for i in range(30))
    cells = {c for r in rows for c in r[1:]}
    assert {f"{1000 * i + j:,} kB ({j}x)" for i in range(30) for j in range(8)} <= cells
    sizes = {
        r.font.size.pt
        for s in prs.slides
        for sh in s.shapes
        if sh.has_table
        for row in sh.table.rows
        for c in row.cells
        for p in c.text_frame.paragraphs
        for r in p.runs
    }
    assert min(sizes) >= slides.TABLE_MIN_PT  # split, never shrunk unreadable
    titles = [s.shapes[0].text_frame.text for s in prs.slides if s.shapes[0].has_text_frame]
    for t in ("The idea", "What was scaled down, and why", "Reproduce it", "Only words"):
        assert any(x.startswith(t) for x in titles), t
    assert "make repro PAPER=mcunet" in "\n".join(
        sh.text_frame.text for s in prs.slides for sh in s.shapes if sh.has_text_frame
    )


def test_lists_and_sub_headings_are_read_as_such() -> None:
    page = slides.parse_report(
        "# T\n\n## S\n\n### Sub\n\n1. one\n2. two,\n   wrapped\n\n- a\n* b\n\n## \n\n![x](f.png)\n"
    )
    (name, blocks), (untitled, more) = page.sections
    assert untitled == "S" and more[0].kind == "image"  # an untitled section continues "S"
    assert name == "S" and [b.kind for b in blocks] == ["text", "bullets", "bullets"]
    assert blocks[0].text == "**Sub**" and slides.plain(blocks[0].text) == "Sub"
    assert blocks[1].items == ["one", "two, wrapped"] and blocks[2].items == ["a", "b"]


def test_a_prose_column_moves_to_the_notes(deck) -> None:
    out, _, _ = deck
    prs = pptx.Presentation(str(out))
    (slide,) = [s for s in prs.slides if s.shapes[0].text_frame.text == "Targets"]
    t = next(sh.table for sh in slide.shapes if sh.has_table)
    assert [c.text for c in t.rows[0].cells] == ["Target", "Goal"]
    assert [[c.text for c in r.cells] for r in list(t.rows)[1:]] == [
        [f"target {i}", f"≥ {i}x"] for i in range(3)
    ]
    assert "Column 'Note' in the notes." in "\n".join(
        sh.text_frame.text for sh in slide.shapes if sh.has_text_frame
    )
    assert "why target 2 matters" in slide.notes_slide.notes_text_frame.text


def test_no_text_leaves_its_box_and_the_check_can_fail(deck, tmp_path: Path) -> None:
    out, _, _ = deck
    assert slides.check_fit(out) == []
    prs = pptx.Presentation(str(out))
    assert (prs.slide_width, prs.slide_height) == (12192000, 6858000)  # 16:9
    notes = [s.notes_slide.notes_text_frame.text for s in prs.slides if s.has_notes_slide]
    assert any("Sentence 39 explains" in n for n in notes)  # the longer text is in the notes
    # a box with more text than it holds is caught, as is a shape off the slide
    bad = slides.Deck("t")
    s = bad.slide("Too much")
    bad.text(s, 36, 100, 300, 60, ["word " * 200])
    bad.text(s, 900, 100, 300, 60, ["x"])
    path = bad.save(tmp_path / "bad.pptx")
    problems = slides.check_fit(path)
    assert any("text needs" in p for p in problems) and any(
        "outside the slide" in p for p in problems
    )


def test_the_same_report_gives_the_same_deck(deck, tmp_path: Path) -> None:
    out, folder, _ = deck
    again = slides.paper_deck(SLUG, folder, tmp_path / "again.pptx")
    assert again.read_bytes() == out.read_bytes()


def test_the_course_deck_has_one_summary_slide_per_paper(deck, tmp_path: Path) -> None:
    _, folder, _ = deck
    other = tmp_path / "ofa"
    other.mkdir()
    ofa = [claim(30, ours=None, ok=False), *CLAIMS[:4]]  # an unmeasured result first
    write_claims_json(
        ofa, other / "claims.json", paper="once_for_all", profile="smoke", generated_by="t"
    )
    out = slides.course_deck(
        [folder / "claims.json", other / "claims.json"], tmp_path / "course.pptx"
    )
    prs = pptx.Presentation(str(out))
    titles = [s.shapes[0].text_frame.text for s in prs.slides][1:]
    ok = sum(c.kind == "result" and c.reproduced for c in CLAIMS)
    total = sum(c.kind == "result" for c in CLAIMS)
    assert titles == [  # the registry's order, whatever the order given
        f"Once-for-All: {sum(c.reproduced for c in ofa)} of 5 results reproduced",
        f"MCUNet / MCUNetV2: {ok} of {total} results reproduced",
    ]
    for prefix, path in (("MCUNet", folder), ("Once-for-All", other)):
        results = [  # the first measured results
            c
            for c in json.loads((path / "claims.json").read_text())["claims"]
            if c["kind"] == "result" and c["ours"] is not None
        ]
        rows = table_rows(prs, prefix)
        assert rows == [slides.claim_cells(c) for c in results[: slides.HEADLINE]], prefix
    assert slides.check_fit(out) == []


def test_the_stages_record_their_decks_in_mlflow(tmp_path: Path) -> None:
    from common.tracking import list_runs

    folder = tmp_path / "report"
    make_report(folder)
    out = tmp_path / "slides.pptx"
    assert slides.main(["paper", SLUG, "--report", str(folder), "--out", str(out)]) == 0
    assert (
        slides.main(["course", "--out", str(tmp_path / "c.pptx"), str(folder / "claims.json")]) == 0
    )
    runs = {r["run_name"]: r for r in list_runs("reports") if r["status"] == "FINISHED"}
    assert runs[f"{SLUG}_slides"]["metrics"]["slides"] == slides.slide_count(out)
    assert runs["course_slides"]["metrics"]["slides"] == 2
    assert slides.main(["nonsense"]) == 2


def test_missing_or_broken_inputs_are_one_line_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "report"
    argv = ["paper", SLUG, "--report", str(folder), "--out", str(tmp_path / "s.pptx")]
    assert slides.main(argv) == 2
    assert "README.md not found: run the paper's report stage first" in capsys.readouterr().err
    make_report(folder)
    (folder / "claims.json").write_text('{"claims": [{"id": 1')
    assert slides.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "claims.json is not a claims.json (JSONDecodeError" in err and "\n" not in err
    (folder / "claims.json").write_text('{"claims": [{"id": "x"}]}')
    assert slides.main(argv) == 2
    assert "KeyError" in capsys.readouterr().err
    assert slides.main(["paper", "no_such_paper", "--report", str(folder), "--out", "x.pptx"]) == 2
    assert "is not a paper of papers/registry.yaml" in capsys.readouterr().err


def test_the_pdf_has_a_page_per_slide(deck, tmp_path: Path) -> None:
    if slides.soffice() is None:
        pytest.skip(f"LibreOffice is not installed: {slides.SOFFICE_INSTALL}")
    out, _, _ = deck
    pdf = slides.to_pdf(out, tmp_path / "pdf")
    assert pdf is not None and slides.pdf_pages(pdf) == slides.slide_count(out)
