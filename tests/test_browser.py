"""The rendered book, opened in a real headless browser (Debian's Chromium) as a reader would.

Every page of the table of contents must load without console errors or failed requests,
show every figure its notebook made (loaded, with a non-zero size on screen), typeset every
formula, offer a copy button on every code block, and link only to places that exist.
Chapters must have their "Open in Colab" and download buttons. Screenshots of the landing
page and of the first chapter are written to ``_build/screenshots/`` for a person to look at.

This file checks a book that is already built: ``make test`` runs it after the strict build.
Run it alone with::

    .venv/bin/jupyter-book build .          # or: make book
    npm install --prefix _build/.browser mathjax@3   # MathJax for the offline browser, once
    MINISSL_BOOK_REQUIRED=1 .venv/bin/python -m pytest tests/test_browser.py -q

Without a built book, Chromium, Playwright or the local MathJax the tests are skipped, or
fail when ``MINISSL_BOOK_REQUIRED=1`` (as in ``make test``).
"""

from __future__ import annotations

import importlib
import os
import re
import struct
import sys
import zlib
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import browser_check as bc  # noqa: E402

SITE = ROOT / "_build" / "html"
SHOTS = ROOT / "_build" / "screenshots"
REQUIRED = os.environ.get("MINISSL_BOOK_REQUIRED", "") == "1"
PAGES = bc.toc_pages(ROOT)
CHAPTER_PAGES = [p for p in PAGES if p.startswith("chapters/")]
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())


def _unavailable(why: str):
    if REQUIRED:
        pytest.fail(why)
    pytest.skip(why)


def _need_browser() -> str:
    try:
        importlib.import_module("playwright.sync_api")
    except ImportError:
        _unavailable("the Python package playwright is missing (pip install playwright)")
    try:
        return bc.find_chromium()
    except FileNotFoundError as err:
        _unavailable(str(err))


@pytest.fixture(scope="module")
def reports() -> dict[str, bc.PageReport]:
    if not (SITE / "index.html").is_file():
        _unavailable("no built book in _build/html: run `make book` first")
    chromium = _need_browser()
    if bc.find_mathjax() is None:
        _unavailable(f"no local MathJax in {bc.DEFAULT_MATHJAX}: "
                     "npm install --prefix _build/.browser mathjax@3")
    missing = [p for p in PAGES if not (SITE / p).is_file()]
    assert not missing, f"the built book lacks {missing}: build it again (make book)"
    shots = {PAGES[0]: SHOTS / "landing.png"}
    if CHAPTER_PAGES:
        shots[CHAPTER_PAGES[0]] = SHOTS / "chapter.png"
    for old in shots.values():
        old.unlink(missing_ok=True)
    return bc.check_pages(SITE, PAGES, screenshots=shots, chromium=chromium)


@pytest.mark.parametrize("page", PAGES)
def test_page_loads_without_errors(reports, page):
    problems = reports[page].problems()
    assert not problems, f"{page}:\n  " + "\n  ".join(problems)
    assert reports[page].h1, f"{page} has no title"


def _expected_figures(page: str) -> int:
    """How many images the executed notebook of ``page`` displays (from the build's cache)."""
    from jupyter_cache import get_cache

    source = ROOT / page.replace(".html", ".ipynb")
    nb = nbformat.read(source, as_version=4)
    try:
        _, nb = get_cache(str(ROOT / CONFIG["execute"]["cache"])).merge_match_into_notebook(nb)
    except KeyError:
        pytest.fail(f"{source.name} is not in the execution cache: build the book again")
    count = 0
    for cell in nb.cells:
        tags = set(cell.get("metadata", {}).get("tags", []))
        if cell.cell_type != "code" or tags & {"remove-output", "remove-cell"}:
            continue
        for out in cell.outputs:
            data = out.get("data", {})
            count += any(k in data for k in ("image/png", "image/jpeg", "image/svg+xml"))
    return count


@pytest.mark.parametrize("page", CHAPTER_PAGES)
def test_chapter_shows_all_its_figures(reports, page):
    figures = reports[page].figures()
    expected = _expected_figures(page)
    assert expected > 0, f"{page}: its executed notebook shows no figure"
    assert len(figures) >= expected, f"{page}: {expected} figures made, {len(figures)} shown"
    for fig in figures:
        assert fig["naturalWidth"] > 0 and fig["naturalHeight"] > 0, fig
        assert fig["width"] > 0 and fig["height"] > 0, fig


@pytest.mark.parametrize("page", CHAPTER_PAGES)
def test_every_chapter_figure_has_a_caption_and_alt_text(reports, page):
    # Figures come from cell metadata {"mystnb": {"figure": {"caption"}, "image": {"alt"}}}.
    for fig in reports[page].figures():
        assert fig["alt"].strip() and fig["caption"].strip(), (
            f"{page}: {fig['src']} has no alt text or caption; give its cell mystnb.figure."
            "caption and mystnb.image.alt metadata")


# The block diagram of each method family, by its figure name, in the chapter that introduces it.
DIAGRAMS = {
    "fig-diagram-contrastive": "chapters/03_contrastive.html",
    "fig-diagram-language-model": "chapters/04_predictive_coding.html",
    "fig-diagram-autoencoder": "chapters/05_autoencoding.html",
    "fig-diagram-swav": "chapters/06_clustering.html",
    "fig-diagram-gan": "chapters/07_generative.html",
    "fig-diagram-self-distillation": "chapters/08_self_prediction.html",
    "fig-diagram-cpc": "chapters/10_beyond.html",
}


@pytest.mark.parametrize("name", sorted(DIAGRAMS))
def test_method_diagram_is_shown_with_alt_text(reports, name):
    # A figure's name becomes the id of its <figure>; the diagram must be drawn and described.
    page = DIAGRAMS[name]
    assert page in reports, f"{page} is not in the table of contents"
    shown = [fig for fig in reports[page].figures() if fig["figure"] == name]
    assert len(shown) == 1, f"{page}: {len(shown)} figures named {name!r}"
    fig = shown[0]
    assert fig["naturalWidth"] > 0 and fig["naturalHeight"] > 0, fig
    assert fig["alt"].strip(), f"{page}: {name} has no alt text; give its cell mystnb.image.alt"
    assert fig["caption"].strip(), f"{page}: {name} has no caption"


def test_math_is_typeset(reports):
    pages_with_math = [p for p, r in reports.items() if r.math_total]
    assert "book/notation.html" in pages_with_math
    for page in pages_with_math:
        r = reports[page]
        assert r.math_rendered == r.math_total and not r.math_errors, (page, r.raw_tex)


@pytest.mark.parametrize("page", CHAPTER_PAGES)
def test_chapter_has_colab_and_download_buttons(reports, page):
    repo = CONFIG["repository"]
    owner_name = repo["url"].rstrip("/").split("github.com/")[1]
    source = page.replace(".html", ".ipynb")
    colab = (f"https://colab.research.google.com/github/{owner_name}/blob/"
             f"{repo.get('branch', 'main')}/{source}")
    links = reports[page].links
    assert colab in links, f"{page}: no 'Open in Colab' link to {colab}"
    assert any(link.endswith(f"/_sources/{source}") for link in links), (
        f"{page}: no download link to the notebook"
    )
    assert (ROOT / source).is_file()


def test_internal_links_resolve(reports):
    broken = bc.broken_links(SITE, reports)
    assert not broken, "\n".join(broken)
    assert sum(len(r.links) for r in reports.values()) > 10 * len(reports)


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", head[16:24])


def test_screenshots_are_written(reports):
    for name in ("landing.png", "chapter.png"):
        path = SHOTS / name
        assert path.is_file(), f"{path} was not written"
        assert _png_size(path) == (bc.VIEWPORT["width"], bc.VIEWPORT["height"])
        assert path.stat().st_size > 20_000, f"{path} looks blank"


def test_search_finds_a_chapter(reports):
    titles = bc.search(SITE, "pretext", chromium=bc.find_chromium())
    assert any("retext" in t for t in titles), titles


def _public_names(module) -> list[str]:
    names = getattr(module, "__all__", None)
    if names is None:
        names = [n for n, v in vars(module).items() if not n.startswith("_")
                 and callable(v) and getattr(v, "__module__", "").startswith(module.__name__)]
    return [n for n in names if not n.isupper()]  # constants are documented where they are used


def test_api_page_documents_every_public_name(reports):
    """Each module on the API page lists every public function and class it exports."""
    api = (SITE / "book" / "api.html").read_text()
    documented = set(re.findall(r'\sid="(minissl\.[\w.]+)"', api))
    modules = re.findall(r"automodule:: (minissl[\w.]*)", (ROOT / "book" / "api.md").read_text())
    assert len(modules) >= 10
    missing = []
    for name in modules:
        module = importlib.import_module(name)
        for export in _public_names(module):
            owners = [m for m in modules if f"{m}.{export}" in documented]
            if not owners:
                missing.append(f"{name}.{export}")
    assert not missing, f"not on the API page (a docstring missing, or a module not listed in " \
                        f"book/api.md): {missing}"
    packages = {m.name for m in __import__("pkgutil").iter_modules(
        importlib.import_module("minissl").__path__) if not m.name.startswith("_")}
    unlisted = packages - {m.split(".")[1] for m in modules if "." in m} - {"cli"}
    assert not unlisted, f"modules of minissl missing from book/api.md: {sorted(unlisted)}"


def test_coursework_page_ran(reports):
    page = (SITE / "book" / "coursework.html").read_text()
    assert "SimCLR loss:" in page and "kNN" in page, "the coursework page was not executed"
    assert "Traceback" not in page


# The checker itself: a small site with one of each problem, so a passing book means something.
_BAD_PAGE = """<!doctype html><html><head><title>bad</title></head><body><article>
<h1>Bad page</h1>
<script>console.error("something broke");</script>
<img src="_images/missing.png" alt="gone">
<img src="_images/ok.png" alt="fine" style="width:0;height:0">
<span class="math">\\(x^2\\)</span>
<a href="nowhere.html">a broken link</a> <a href="bad.html#no-such-id">a broken anchor</a>
<a href="bad.html#here" id="here">a good anchor</a>
</article></body></html>"""


def _tiny_png() -> bytes:
    """A valid 2x2 grey PNG."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", 2, 2, 8, 0, 0, 0, 0)
    pixels = zlib.compress(b"\x00\x80\x80" * 2)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(
        b"IEND", b"")


def test_the_checker_sees_each_kind_of_problem(tmp_path):
    chromium = _need_browser()
    (tmp_path / "_images").mkdir()
    (tmp_path / "_images" / "ok.png").write_bytes(_tiny_png())
    (tmp_path / "bad.html").write_text(_BAD_PAGE)
    reports = bc.check_pages(tmp_path, ["bad.html"], chromium=chromium)
    problems = "\n".join(reports["bad.html"].problems())
    assert "console error: something broke" in problems
    assert "image did not load: _images/missing.png" in problems
    assert "zero size on screen: _images/ok.png" in problems
    assert "1 of 1 formulas not typeset" in problems
    broken = bc.broken_links(tmp_path, reports)
    assert broken == ["bad.html -> bad.html#no-such-id: no element with that id",
                      "bad.html -> nowhere.html: no such file"], broken
