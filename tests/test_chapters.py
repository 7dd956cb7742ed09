"""The book's structure: every chapter is in the table of contents, stored clean, starts the
same way, proves its claims with asserts, cites only known papers and ends with exercises.

nbval executes the chapters (see `make notebooks`); these checks are the fast, static part.
"""

import re
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
TOC = yaml.safe_load((ROOT / "_toc.yml").read_text())


def toc_files():
    files = [TOC["root"]]
    for part in TOC.get("parts", []):
        files += [entry["file"] for entry in part.get("chapters", [])]
    return files


def read(path):
    return nbformat.read(path, as_version=4)


def test_there_are_chapters():
    assert len(CHAPTERS) >= 2


def test_toc_and_chapters_agree():
    listed = toc_files()
    for nb in CHAPTERS:
        assert f"chapters/{nb.stem}" in listed, f"{nb.name} is missing from _toc.yml"
    for entry in listed:
        candidates = [ROOT / f"{entry}{ext}" for ext in (".md", ".ipynb")]
        assert any(p.exists() for p in candidates), f"_toc.yml lists {entry}, which does not exist"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_is_stored_without_outputs(path):
    nb = read(path)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, (
                f"{path.name} has stored outputs: clear them (the book and nbval execute it)"
            )


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_starts_with_title_and_the_standard_setup_cell(path):
    nb = read(path)
    first = nb.cells[0]
    assert first.cell_type == "markdown" and first.source.startswith("# ")
    titles = [c for c in nb.cells
              if c.cell_type == "markdown" and re.search(r"^# ", c.source, re.M)]
    assert len(titles) == 1, "one '# ' title per chapter; sections use '##'"
    setup = next(c for c in nb.cells if c.cell_type == "code").source
    # Colab: the package is installed from the repository named in _config.yml, only if missing.
    url = CONFIG["repository"]["url"]
    assert "except ImportError:" in setup and f"git+{url}" in setup, (
        f"the first code cell of {path.name} must install minissl from {url} when it is missing"
    )
    assert "minissl.profiles.start()" in setup


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_proves_claims_and_ends_with_exercises(path):
    nb = read(path)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    # notebook.claim is an assert in the quick profile, the one the measurements were made in
    assert re.search(r"^\s*(assert |claim\()", code, re.M), f"{path.name} has no assert cell"
    headings = [line for c in nb.cells if c.cell_type == "markdown"
                for line in c.source.splitlines() if line.startswith("#")]
    assert any("Exercises" in h for h in headings), f"{path.name} has no Exercises section"
    # Headings never skip a level (Sphinx warns, and the book is built with -W).
    levels = [len(h) - len(h.lstrip("#")) for h in headings]
    assert all(b <= a + 1 for a, b in zip(levels, levels[1:])), headings


def test_every_citation_is_in_the_bibliography():
    bib = (ROOT / "book" / "references.bib").read_text()
    keys = re.findall(r"^@\w+\{([^,]+),", bib, re.M)
    assert len(keys) == len(set(keys)), "duplicate keys in references.bib"
    sources = [c.source for nb in CHAPTERS for c in read(nb).cells if c.cell_type == "markdown"]
    sources += [p.read_text() for p in (ROOT / "book").glob("*.md")]
    cited = {k.strip() for s in sources for group in re.findall(r"\{cite[:a-z]*\}`([^`]+)`", s)
             for k in group.split(",")}
    assert cited, "no citations found"
    missing = cited - set(keys)
    assert not missing, f"cited but not in book/references.bib: {sorted(missing)}"


@pytest.mark.parametrize("path", [*CHAPTERS, ROOT / "book" / "benchmark.ipynb"],
                         ids=lambda p: p.stem)
def test_every_glued_number_in_the_prose_is_glued_by_a_code_cell(path):
    nb = read(path)
    prose = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    used = set(re.findall(r"\{glue(?::\w+)?\}`(\w+)", prose))
    named = set(re.findall(r"glue\(\s*\"(\w+)\"", code))
    prefixes = [p.split("{")[0] for p in re.findall(r"glue\(\s*f\"([^\"]*)\"", code)]
    missing = sorted(u for u in used
                     if u not in named and not any(p and u.startswith(p) for p in prefixes))
    assert not missing, f"{path.name}: no code cell glues {missing}"
