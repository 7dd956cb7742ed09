"""Open the built book in headless Chromium and check what a reader would see.

For every page of the table of contents (``_toc.yml``) it records what went wrong in the
browser (console errors, uncaught exceptions, requests that failed), whether every figure
loaded and has a non-zero size on screen, whether every formula was typeset by MathJax
without a TeX error, and every link the page offers. Links inside the book are then checked
against the built files, fragments (``page.html#section``) included. Screenshots of the
landing page and of one chapter are written for a person to look at.

The browser has no network. Pages are served from a local HTTP server; the one outside
resource the book loads on page view, MathJax from a CDN, is answered from a local copy of the
same npm package (``npm install --prefix _build/.browser mathjax@3``), so formulas render as
an online reader sees them. Any other outside request is refused and reported.

    python tools/browser_check.py [--site _build/html] [--screenshots _build/screenshots]

Needs Debian's ``chromium`` (or ``MINISSL_CHROMIUM=/path/to/chrome``) and the Python package
``playwright`` (only its driver is used: no browser download).
"""

from __future__ import annotations

import argparse
import functools
import html
import json
import os
import re
import shutil
import sys
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parents[1]
# Chromium as this machine runs it headless: no sandbox as root, and no background traffic
# (the closed network refuses it, and each refusal would be noise).
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
MATHJAX_CDN = re.compile(r"^https://cdn\.jsdelivr\.net/npm/mathjax@3(?:\.[\d.]+)?/(?P<path>[^?#]+)")
DEFAULT_MATHJAX = ROOT / "_build" / ".browser" / "node_modules" / "mathjax"
VIEWPORT = {"width": 1280, "height": 900}

# What the page reports about itself once it has loaded and MathJax has finished.
_PAGE_STATE_JS = """
async () => {
  const mathNodes = Array.from(document.querySelectorAll('.math'));
  if (mathNodes.length && window.MathJax) {
    for (let i = 0; i < 200 && !(MathJax.startup && MathJax.startup.promise); i++)
      await new Promise(r => setTimeout(r, 50));
    if (MathJax.startup && MathJax.startup.promise) await MathJax.startup.promise;
  }
  const article = document.querySelector('article') || document.body;
  const images = await Promise.all(Array.from(article.querySelectorAll('img')).map(async img => {
    img.scrollIntoView();
    try { await img.decode(); } catch (e) {}
    const box = img.getBoundingClientRect();
    return {src: img.getAttribute('src'), alt: img.getAttribute('alt') || '',
            naturalWidth: img.naturalWidth, naturalHeight: img.naturalHeight,
            width: box.width, height: box.height,
            hidden: img.offsetParent === null,
            figure: (img.closest('figure') || {}).id || '',
            caption: ((img.closest('figure') || {querySelector: () => null})
                      .querySelector('figcaption') || {}).textContent || ''};
  }));
  window.scrollTo(0, 0);
  return {
    title: document.title,
    h1: (document.querySelector('h1') || {}).textContent || '',
    images,
    mathTotal: mathNodes.length,
    mathRendered: mathNodes.filter(n => n.querySelector('mjx-container')).length,
    mathErrors: Array.from(document.querySelectorAll('mjx-merror'))
                  .map(n => n.getAttribute('data-mjx-error') || n.textContent).slice(0, 5),
    rawTex: mathNodes.filter(n => !n.querySelector('mjx-container'))
                     .map(n => n.textContent.slice(0, 80)).slice(0, 5),
    codeCells: document.querySelectorAll('div.highlight pre').length,
    copyButtons: document.querySelectorAll('button.copybtn').length,
    links: Array.from(document.querySelectorAll('a[href]')).map(a => a.href),
  };
}
"""


@dataclass
class PageReport:
    """What one page looked like in the browser."""

    page: str  # path relative to the site root, e.g. "chapters/01_paradigms.html"
    title: str = ""
    h1: str = ""
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    blocked_requests: list[str] = field(default_factory=list)
    images: list[dict] = field(default_factory=list)
    math_total: int = 0
    math_rendered: int = 0
    math_errors: list[str] = field(default_factory=list)
    raw_tex: list[str] = field(default_factory=list)
    code_cells: int = 0
    copy_buttons: int = 0
    links: list[str] = field(default_factory=list)

    def figures(self) -> list[dict]:
        """The page's own images (cell outputs and figures), not the theme's logos."""
        return [im for im in self.images if "_images/" in (im["src"] or "")]

    def problems(self) -> list[str]:
        """Everything a reader would notice as broken on this page, one line each."""
        out = [f"console error: {m}" for m in self.console_errors]
        out += [f"uncaught exception: {m}" for m in self.page_errors]
        out += [f"request failed: {m}" for m in self.failed_requests]
        out += [f"outside request refused (offline): {u}" for u in self.blocked_requests]
        for im in self.images:
            if im["naturalWidth"] == 0 or im["naturalHeight"] == 0:
                out.append(f"image did not load: {im['src']}")
            elif not im["hidden"] and (im["width"] == 0 or im["height"] == 0):
                out.append(f"image has zero size on screen: {im['src']}")
        if self.math_rendered < self.math_total:
            out.append(f"{self.math_total - self.math_rendered} of {self.math_total} formulas "
                       f"not typeset, e.g. {self.raw_tex}")
        out += [f"TeX error: {m}" for m in self.math_errors]
        if self.code_cells and self.copy_buttons < self.code_cells:
            out.append(f"{self.code_cells} code blocks but {self.copy_buttons} copy buttons")
        return out


def find_chromium() -> str:
    """The Chromium binary: ``MINISSL_CHROMIUM`` if set, else the first one on PATH."""
    env = os.environ.get("MINISSL_CHROMIUM")
    if env:
        return env
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    raise FileNotFoundError(
        "no Chromium found: install Debian's (apt-get update && apt-get install -y chromium) "
        "or set MINISSL_CHROMIUM to a Chrome/Chromium binary"
    )


def find_mathjax(path: str | os.PathLike | None = None) -> Path | None:
    """The local copy of the ``mathjax@3`` npm package, or None when there is none."""
    candidate = Path(path or os.environ.get("MINISSL_MATHJAX") or DEFAULT_MATHJAX)
    return candidate if (candidate / "es5" / "tex-mml-chtml.js").is_file() else None


def toc_pages(root: Path = ROOT) -> list[str]:
    """The HTML pages of the table of contents, in reading order."""
    import yaml

    toc = yaml.safe_load((root / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        files += [entry["file"] for entry in part.get("chapters", []) if "file" in entry]
    return [f"{f}.html" for f in files]


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass


@contextmanager
def serve(site: Path) -> Iterator[str]:
    """Serve ``site`` on a free port of 127.0.0.1; yields the base URL (ending in '/')."""
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def browser(chromium: str | None = None) -> Iterator[object]:
    """A headless Chromium driven by Playwright; yields the Browser."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=chromium or find_chromium(), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def _route_offline(context, base: str, mathjax: Path | None, blocked: list[str]) -> None:
    def handle(route):
        url = route.request.url
        if url.startswith(base) or url.startswith("data:"):
            return route.continue_()
        match = MATHJAX_CDN.match(url)
        if match and mathjax is not None:
            local = mathjax / match["path"]
            if local.is_file():
                return route.fulfill(path=str(local))
        blocked.append(url)
        return route.abort()

    context.route("**/*", handle)


def check_pages(site: Path, pages: Iterable[str], *, screenshots: dict[str, Path] | None = None,
                mathjax: Path | None = None, chromium: str | None = None,
                timeout_ms: int = 30_000) -> dict[str, PageReport]:
    """Open each page of ``site`` in headless Chromium and report what a reader sees.

    Args:
        site: the built HTML folder (``_build/html``).
        pages: page paths relative to ``site``, e.g. ``["book/intro.html"]``.
        screenshots: page path -> PNG file to write a screenshot of that page's first screen.
        mathjax: local ``mathjax@3`` package that answers the CDN's URLs (default: found by
            :func:`find_mathjax`; without one, formulas are reported as not typeset).
        chromium: the browser binary (default: :func:`find_chromium`).
        timeout_ms: the longest wait for one page to load.

    Returns:
        page path -> :class:`PageReport`.
    """
    site = Path(site)
    mathjax = mathjax if mathjax is not None else find_mathjax()
    screenshots = screenshots or {}
    reports: dict[str, PageReport] = {}
    with serve(site) as base, browser(chromium) as b:
        context = b.new_context(viewport=VIEWPORT)
        blocked: list[str] = []
        _route_offline(context, base, mathjax, blocked)
        for page_path in pages:
            report = PageReport(page=page_path)
            reports[page_path] = report
            blocked.clear()
            page = context.new_page()
            page.on("console", lambda m, r=report: r.console_errors.append(m.text)
                    if m.type == "error" else None)
            page.on("pageerror", lambda e, r=report: r.page_errors.append(str(e)))
            page.on("requestfailed", lambda q, r=report: r.failed_requests.append(
                f"{q.url} ({q.failure})") if q.url.startswith(base) else None)
            page.on("response", lambda s, r=report: r.failed_requests.append(
                f"{s.url} (HTTP {s.status})") if s.status >= 400 else None)
            response = page.goto(base + page_path, wait_until="load", timeout=timeout_ms)
            if response is None or response.status >= 400:
                report.page_errors.append(f"the page itself did not load: {page_path}")
                page.close()
                continue
            state = page.evaluate(_PAGE_STATE_JS)
            report.title, report.h1 = state["title"], state["h1"].strip().rstrip("#").strip()
            report.images = state["images"]
            report.math_total, report.math_rendered = state["mathTotal"], state["mathRendered"]
            report.math_errors, report.raw_tex = state["mathErrors"], state["rawTex"]
            report.code_cells, report.copy_buttons = state["codeCells"], state["copyButtons"]
            report.links = state["links"]
            report.blocked_requests = list(blocked)
            if page_path in screenshots:
                out = Path(screenshots[page_path])
                out.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(out))
            page.close()
        context.close()
    return reports


def search(site: Path, query: str, *, chromium: str | None = None,
           timeout_ms: int = 30_000) -> list[str]:
    """Type ``query`` into the book's search page; returns the titles of the results."""
    with serve(Path(site)) as base, browser(chromium) as b:
        context = b.new_context(viewport=VIEWPORT)
        _route_offline(context, base, None, [])
        page = context.new_page()
        page.goto(f"{base}search.html?q={query}", wait_until="load", timeout=timeout_ms)
        page.wait_for_function(
            "() => document.querySelector('#search-results p.search-summary')"
            " && !document.querySelector('#search-progress')?.textContent.includes('Preparing')",
            timeout=timeout_ms)
        titles = page.eval_on_selector_all("#search-results ul.search li > a",
                                           "els => els.map(e => e.textContent)")
        context.close()
    return titles


_ID = re.compile(r"""\sid=["']([^"']+)["']""")


@functools.cache
def _ids(path: Path) -> frozenset[str]:
    return frozenset(html.unescape(i) for i in _ID.findall(path.read_text(errors="replace")))


def broken_links(site: Path, reports: dict[str, PageReport]) -> list[str]:
    """Links inside the book that lead nowhere: a missing file or a missing ``#fragment``.

    Links to other sites are not followed (the check runs offline); ``javascript:`` and
    ``mailto:`` links are skipped.
    """
    site = Path(site).resolve()
    bad = []
    for report in reports.values():
        for url in report.links:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or parts.hostname != "127.0.0.1":
                continue
            target = site / unquote(parts.path).lstrip("/")
            if target.is_dir():
                target = target / "index.html"
            where = f"{report.page} -> {parts.path.lstrip('/')}"
            if not target.is_file():
                bad.append(f"{where}: no such file")
                continue
            fragment = unquote(parts.fragment)
            if fragment and target.suffix == ".html" and fragment not in _ids(target):
                bad.append(f"{where}#{fragment}: no element with that id")
    return sorted(set(bad))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site", type=Path, default=ROOT / "_build" / "html")
    parser.add_argument("--screenshots", type=Path, default=ROOT / "_build" / "screenshots")
    parser.add_argument("--json", type=Path, help="also write every page's report here")
    args = parser.parse_args(argv)
    if not (args.site / "index.html").is_file():
        print(f"no built book in {args.site}: run `make book` first", file=sys.stderr)
        return 2
    if find_mathjax() is None:
        print(f"note: no local MathJax at {DEFAULT_MATHJAX}; formulas will show as not typeset "
              "(npm install --prefix _build/.browser mathjax@3)", file=sys.stderr)
    pages = toc_pages()
    chapters = [p for p in pages if p.startswith("chapters/")]
    shots = {pages[0]: args.screenshots / "landing.png"}
    if chapters:
        shots[chapters[0]] = args.screenshots / "chapter.png"
    reports = check_pages(args.site, pages, screenshots=shots)
    failed = 0
    for page, report in reports.items():
        problems = report.problems()
        failed += bool(problems)
        print(f"{'FAIL' if problems else 'ok  '} {page}: {len(report.figures())} figures, "
              f"{report.math_rendered}/{report.math_total} formulas, {len(report.links)} links")
        for p in problems:
            print(f"       {p}")
    bad = broken_links(args.site, reports)
    for line in bad:
        print(f"broken link: {line}")
    if args.json:
        args.json.write_text(json.dumps({p: r.__dict__ for p, r in reports.items()}, indent=1))
    print(f"screenshots: {', '.join(str(p) for p in shots.values())}")
    return 1 if failed or bad else 0


if __name__ == "__main__":
    sys.exit(main())
