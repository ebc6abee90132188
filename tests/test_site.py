"""The built documentation site (``make docs``), opened as a reader would: in headless Chromium, over HTTP.

Every lesson page and the index load with no console error, no failed request and nothing fetched from
outside the site; every image has a real size; math is typeset by MathJax (no raw ``\\(`` left); the
search finds ``inter_neuron_term``.  Screenshots of three pages go to ``$TMPDIR/tsslbp-site/``.

Skips, saying why, when the site has not been built or no Chromium/playwright is installed.  CI builds the
site and runs these (``.ci/run``).
"""
import functools
import http.server
import os
import re
import shutil
import tempfile
import threading

import pytest

ROOT = os.path.join(os.path.dirname(__file__), "..")
SITE = os.path.join(ROOT, "docs", "_build", "html")
CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-quic"]

pytestmark = pytest.mark.site


def _lesson_pages():
    folder = os.path.join(SITE, "tutorials")
    return sorted(f"tutorials/{f}" for f in os.listdir(folder) if re.match(r"\d\d_.*\.html$", f)) if os.path.isdir(folder) else []


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(os.path.join(SITE, "index.html")):
        pytest.skip("the site is not built: run `make docs` first (docs/_build/html)")
    if CHROMIUM is None:
        pytest.skip("no Chromium: apt-get install chromium (or set CHROMIUM to its path)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install -r requirements-docs.txt")
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=SITE)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b, f"http://127.0.0.1:{server.server_address[1]}/"
        b.close()
    server.shutdown()


def _open(browser, path, wait_math=False):
    """Open ``path``; returns (page, problems): console errors, failed or outside requests, HTTP errors."""
    b, base = browser
    page = b.new_page(viewport={"width": 1280, "height": 900})
    problems = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url} ({r.failure})"))
    page.on("response", lambda r: problems.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None)
    page.on("request", lambda r: None if r.url.startswith((base, "data:", "blob:")) else
            problems.append(f"outside the site: {r.url}"))
    page.goto(base + path, wait_until="load")
    page.wait_for_load_state("networkidle")
    if wait_math:
        page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise"
                               " && document.querySelectorAll('mjx-container').length > 0", timeout=20_000)
    return page, problems


def _images_ok(page) -> list[str]:
    return page.evaluate("""() => Array.from(document.images)
        .filter(i => !(i.complete && i.naturalWidth > 0 && i.naturalHeight > 0)).map(i => i.src)""")


def test_every_lesson_and_the_index_load_cleanly(browser):
    pages = ["index.html"] + _lesson_pages()
    assert len(pages) == 11, f"expected the index and ten lessons, found {pages}"
    for path in pages:
        page, problems = _open(browser, path)
        assert not problems, f"{path}: {problems}"
        n_img = page.evaluate("document.images.length")
        assert "\\frac" not in page.evaluate("document.body.innerText"), f"{path}: raw TeX"
        assert not _images_ok(page), f"{path}: images without a size: {_images_ok(page)}"
        if path != "index.html":
            assert n_img >= 1, f"{path}: a lesson page shows its figures"
            assert page.locator("div.cell_output").count() >= 1, f"{path}: no executed output"
            links = page.locator("p.lesson-downloads a")
            assert links.count() == 2
            for i in range(2):  # the .py and the .ipynb are served
                href = links.nth(i).get_attribute("href")
                resp = page.request.get(page.url.rsplit("/", 1)[0] + "/" + href)
                assert resp.ok and len(resp.body()) > 1000, href
        page.close()


def test_the_other_pages_load_cleanly(browser):
    """The pages made from other files: the figures gallery (every figure page), results, summary, notes,
    the check page, the lessons' index and the torch engine's page (a section of README.md)."""
    figures = sorted(f"_generated/figures/{f}" for f in os.listdir(os.path.join(SITE, "_generated", "figures"))
                     if f.endswith(".html"))
    assert len(figures) >= 9, figures  # the index and one page per figure
    for path in figures + ["results/README.html", "_generated/summary.html", "paper-notes.html", "check.html",
                           "_generated/lessons.html", "scale.html"]:
        page, problems = _open(browser, path)
        assert not problems, f"{path}: {problems}"
        assert not _images_ok(page), f"{path}: images without a size: {_images_ok(page)}"
        if path.startswith("_generated/figures/fig"):
            assert page.evaluate("document.images.length") >= 1 and page.locator("div.highlight").count() >= 1
        if path == "scale.html":  # the README's section, included: its commands are on the page
            assert "torchrun --standalone --nproc_per_node 4" in page.evaluate("document.body.innerText")
        page.close()


def test_math_is_typeset_offline(browser):
    """The API page holds the backward's equations: each typeset, none left as raw TeX."""
    page, problems = _open(browser, "api.html", wait_math=True)
    assert not problems, problems
    assert page.locator("mjx-container").count() >= 15
    text = page.evaluate("document.body.innerText")
    assert "\\(" not in text and "\\[" not in text and "\\frac" not in text, "raw TeX left in the page"
    page.close()


def test_search_finds_inter_neuron_term(browser):
    page, problems = _open(browser, "search.html?q=inter_neuron_term")
    page.wait_for_selector("ul.search li", timeout=20_000)
    hits = page.locator("ul.search li a").evaluate_all("els => els.map(e => e.getAttribute('href'))")
    assert any("api.html" in h for h in hits), hits
    assert not problems, problems
    page.close()


def test_screenshots_of_three_pages(browser):
    """For a person to look at (the developer did before resolving the site's issue)."""
    out = os.path.join(os.environ.get("TMPDIR") or tempfile.gettempdir(), "tsslbp-site")
    os.makedirs(out, exist_ok=True)
    for path, name in (("index.html", "index"), ("tutorials/04_inter_neuron.html", "lesson04"),
                       ("api.html", "api")):
        page, problems = _open(browser, path, wait_math=path == "api.html")
        assert not problems, f"{path}: {problems}"
        page.screenshot(path=os.path.join(out, f"{name}.png"))
        assert os.path.getsize(os.path.join(out, f"{name}.png")) > 10_000
        page.close()


def _lesson_has_fast_mode(path) -> bool:
    import sys

    sys.path.insert(0, os.path.join(ROOT, "tutorials"))
    try:
        from _lesson import has_fast_mode
    finally:
        sys.path.pop(0)
    return has_fast_mode(path)


def test_lesson_pages_say_fast_mode_and_show_no_lint_or_local_paths():
    """Each executed lesson page says it ran in fast mode when it did and the lesson has one (lessons 1, 9
    and 10 have none: their pages must not claim it), and shows neither the linter's ``# noqa`` remarks nor
    the absolute path of the machine that built it (both noise to a reader)."""
    pages = _lesson_pages()
    if not pages:
        pytest.skip("the site is not built: run `make docs` first (docs/_build/html)")
    root = os.path.realpath(ROOT)
    for page in pages:
        html = open(os.path.join(SITE, page), encoding="utf-8").read()
        name = os.path.splitext(os.path.basename(page))[0]
        has_fast_mode = _lesson_has_fast_mode(os.path.join(ROOT, "tutorials", f"{name}.py"))
        full = os.environ.get("DOCS_FULL", "") not in ("", "0")
        assert ("lesson-fast-mode" in html) == (has_fast_mode and not full), page
        assert "# noqa" not in html and "noqa: E402" not in html, page
        assert root not in html, page
