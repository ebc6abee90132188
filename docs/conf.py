"""Sphinx configuration of the documentation site: ``make docs`` (or the command in README) builds it into
``docs/_build/html`` from the project's own files, nothing written twice:

* the ten lessons (``tutorials/NN_*.py``, percent-format scripts) are read as notebooks by MyST-NB through
  jupytext and executed at build time (in full with ``DOCS_FULL=1``, as ``make docs`` does; otherwise in
  their fast mode, ``TUTORIAL_FAST=1``, as CI does, and each page of a lesson with a fast mode says so), so each page
  shows the lesson's text, code, printed output and figures; each page links its ``.py`` and ``.ipynb``;
* the figures gallery: one page per section of ``figures/README.md`` (its caption), with the PNG and the script;
* the API reference from the docstrings (autodoc, numpydoc-style sections through napoleon);
* ``docs/paper-notes.md``, ``results/README.md`` with ``results/summary.csv``, and ``docs/check.md``.

Math is typeset by MathJax served from the site itself (``docs/_static/mathjax``, copied from the npm
package by ``docs/fetch_mathjax.py``); no page loads anything from outside the site.

Why MyST-NB and not sphinx-gallery: the lessons' text cells are Markdown (backticks, lists, tables), which
MyST renders as written; sphinx-gallery reads text cells as reStructuredText, where the same text would
render wrongly (single backticks are not code there) unless every lesson were rewritten.
"""
from __future__ import annotations

import os
import re
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)  # docs/_lesson_format.py (the lessons' reader), docs/fetch_mathjax.py
GENERATED = os.path.join(HERE, "_generated")

project = "tsslbp-reference"
author = "the tsslbp-reference developers"
copyright = "2026, " + author

extensions = ["myst_nb", "sphinx.ext.autodoc", "sphinx.ext.napoleon", "sphinx.ext.mathjax", "sphinx.ext.viewcode"]
html_theme = "furo"
html_title = "tsslbp-reference"
html_static_path = ["_static"]
html_favicon = "_static/favicon.svg"
html_css_files = ["site.css"]
mathjax_path = "mathjax/tex-chtml.js"  # served from _static: no CDN
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence"]
myst_heading_anchors = 3
# myst.header: a lesson's first heading is '# Lesson N', its later ones start at '##';
# ref.python: an attribute name (u, s, a, shape) that two classes share makes an ambiguous reference
suppress_warnings = ["myst.header", "ref.python"]

# the lessons, read as notebooks and executed here
nb_custom_formats = {".py": ["_lesson_format.reads", {"fmt": "py:percent"}]}  # jupytext, minus "# noqa"
nb_execution_mode = "force"
nb_execution_timeout = 900
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_kernel_rgx_aliases = {".*": "python3"}
nb_merge_streams = True
FULL = os.environ.get("DOCS_FULL", "") not in ("", "0")
os.environ.setdefault("TUTORIAL_FAST", "0" if FULL else "1")
os.environ.setdefault("TUTORIAL_OUT", os.path.join(HERE, "_build", "lesson_figures"))  # not over the committed PNGs
os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")

autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "undoc-members": False}
napoleon_numpy_docstring = True
napoleon_google_docstring = False
napoleon_use_ivar = True    # dataclass "Attributes" as fields: autodoc documents the members themselves
napoleon_use_param = False  # types such as "ndarray, shape (T, ...)" stay text, not cross-references
napoleon_use_rtype = False

exclude_patterns = ["_build", "_static", "Thumbs.db", ".DS_Store", "conf.py", "fetch_mathjax.py", "_lesson_format.py",
                    "tutorials/_lesson.py", "tutorials/figures", "tutorials/*.ipynb", "tutorials/README.md",
                    "results/*/**", "results/summary.md", "**/.ipynb_checkpoints"]
root_doc = "index"

# -------------------------------------------------------------------------- the pages made from other files
LINKS = {"tutorials": "../tutorials", "results": "../results"}


def _link_sources() -> None:
    """Make ``docs/tutorials`` and ``docs/results`` point at the real folders (links are not committed)."""
    for name, target in LINKS.items():
        path = os.path.join(HERE, name)
        if not os.path.lexists(path):
            os.symlink(target, path)


def _figure_pages() -> list[str]:
    """One page per section of figures/README.md: its heading, figure, caption and the script."""
    out = os.path.join(GENERATED, "figures")
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    text = open(os.path.join(ROOT, "figures", "README.md"), encoding="utf-8").read()
    sections = re.split(r"^## ", text, flags=re.M)[1:]
    names = []
    for section in sections:
        title, _, body = section.partition("\n")
        m = re.search(r"!\[[^\]]*\]\(([^)]+\.png)\)", body)
        if not m:
            continue
        png = m.group(1)
        script = png.replace(".png", ".py")
        name = os.path.splitext(png)[0]
        shutil.copy(os.path.join(ROOT, "figures", png), os.path.join(out, png))
        body = body.replace(m.group(0), f"```{{image}} {png}\n:alt: {title.strip()}\n```")
        page = [f"# {title.strip()}", "", body.strip(), ""]
        if os.path.exists(os.path.join(ROOT, "figures", script)):
            page += [f"## The script: `figures/{script}`", "",
                     f"```{{literalinclude}} ../../../figures/{script}", ":language: python", "```", ""]
        open(os.path.join(out, f"{name}.md"), "w", encoding="utf-8").write("\n".join(page))
        names.append(name)
    intro = text.split("\n## ", 1)[0].split("\n", 1)[1].strip()
    index = ["# Figures: the paper's figures and tables, from this project's runs", "", intro, "",
             "```{toctree}", ":maxdepth: 1", ""] + names + ["```", ""]
    open(os.path.join(out, "index.md"), "w", encoding="utf-8").write("\n".join(index))
    return names


def _lessons_page() -> None:
    """tutorials/README.md as the lessons' index page, its links pointed at the executed lesson pages."""
    text = open(os.path.join(ROOT, "tutorials", "README.md"), encoding="utf-8").read()
    text = re.sub(r"\[([^\]]+)\]\((\d\d_\w+)\.py\)", r"{doc}`\1 </tutorials/\2>`", text)
    text = re.sub(r"\]\((figures/[^)]+\.png)\)", r"](../tutorials/\1)", text)
    text = text.replace("](../docs/", "](../")  # the site's own pages (docs/explore.md) from _generated/
    toc = ["", "```{toctree}", ":hidden:", ""] + [f"../tutorials/{n}" for n in _lesson_names()] + ["```", ""]
    open(os.path.join(GENERATED, "lessons.md"), "w", encoding="utf-8").write(text + "\n".join(toc))


def _summary_page() -> None:
    """results/summary.md (written by `python -m reference summarize results/`) as its own page."""
    out = os.path.join(GENERATED, "summary.md")
    src = os.path.join(ROOT, "results", "summary.md")
    body = open(src, encoding="utf-8").read() if os.path.exists(src) else "No `results/summary.md` yet.\n"
    head = ("# Summary over seeds\n\nWritten by `python -m reference summarize results/` from every run's "
            "`metrics.csv` (`results/summary.csv` holds the same rows).\n\n")
    open(out, "w", encoding="utf-8").write(head + body)


def _prepare(app) -> None:
    _link_sources()
    os.makedirs(GENERATED, exist_ok=True)
    _figure_pages()
    _lessons_page()
    _summary_page()
    mathjax = os.path.join(HERE, "_static", "mathjax", "tex-chtml.js")
    if not os.path.exists(mathjax):
        from fetch_mathjax import fetch  # noqa: E402  (docs/ is on sys.path while Sphinx runs this file)

        fetch(os.path.join(HERE, "_static", "mathjax"))


# -------------------------------------------------------------------------- lesson downloads
def _lesson_names() -> list[str]:
    return sorted(f[:-3] for f in os.listdir(os.path.join(ROOT, "tutorials")) if re.match(r"\d\d_.*\.py$", f))


def _has_fast_mode(name: str) -> bool:
    """Whether lesson ``name`` has a fast mode (``tutorials/_lesson.py``'s ``has_fast_mode``)."""
    sys.path.insert(0, os.path.join(ROOT, "tutorials"))
    try:
        from _lesson import has_fast_mode
    finally:
        sys.path.pop(0)
    return has_fast_mode(os.path.join(ROOT, "tutorials", f"{name}.py"))


def _write_downloads(app, exception) -> None:
    """Copy every lesson's .py and a jupytext .ipynb into the site (``_downloads/lessons/``)."""
    if exception is not None or app.builder.format != "html":
        return
    import jupytext

    out = os.path.join(app.outdir, "_downloads", "lessons")
    os.makedirs(out, exist_ok=True)
    for name in _lesson_names():
        src = os.path.join(ROOT, "tutorials", f"{name}.py")
        shutil.copy(src, os.path.join(out, f"{name}.py"))
        jupytext.write(jupytext.read(src, fmt="py:percent"), os.path.join(out, f"{name}.ipynb"))


def _download_links(app, pagename, templatename, context, doctree) -> None:
    if not pagename.startswith("tutorials/") or "body" not in context:
        return
    name = pagename.split("/", 1)[1]
    if name not in _lesson_names():
        return
    base = "../_downloads/lessons/"
    if not FULL and _has_fast_mode(name):  # say on the page what the reader sees: the fast mode, not the full run
        context["body"] = ('<p class="lesson-fast-mode" role="note">This page ran the lesson in its fast mode '
                           '(<code>TUTORIAL_FAST=1</code>: fewer digits, steps or epochs, so the site builds in '
                           'minutes). Numbers printed here can differ from the lesson run in full '
                           '(<code>python tutorials/' + name + '.py</code>, or <code>DOCS_FULL=1 make docs</code>); '
                           'the claims the lesson asserts are checked in whichever mode it runs.</p>\n' + context["body"])
    context["body"] = (f'<p class="lesson-downloads">Download this lesson: <a href="{base}{name}.py" download>'
                       f'{name}.py</a> (script) · <a href="{base}{name}.ipynb" download>{name}.ipynb</a> '
                       f'(notebook)</p>\n' + context["body"])


#: numpydoc sections whose entries this project writes as ``name : description``.
_FIELD_SECTIONS = ("Parameters", "Attributes", "Returns", "Yields", "Raises", "Other Parameters")
_TYPE = re.compile(r"^(\{|bool|int|float|str|dict|list|tuple|callable|ndarray|array|path|Path|None|np\.|[A-Z]\w*\b(?! \w+ \w+ \w+))")
_FIELD = re.compile(r"^(?P<name>[A-Za-z_*][\w*]*(?:, [A-Za-z_*][\w*]*)*) : (?P<text>.+)$")


def _fields_as_descriptions(app, what, name, obj, options, lines) -> None:
    """Read ``name : text`` in a Parameters/Attributes/Returns section as a name and its description.

    The docstrings write the description after the colon (``seed : seeds weight initialisation, ...``),
    where numpydoc expects a type; napoleon then put a wrapped description's first line in the type slot,
    in parentheses, and cut it off (``config (..., with resume optional (then it must equal the) - run's
    config``).  Rewritten as numpydoc's ``name`` line and an indented description before napoleon reads it;
    a real type (short, with its description indented below) stays.  An entry naming several parameters
    (``inter, intra : bool``) becomes one entry per name, which napoleon's fields need (it showed
    ``intra (inter,)``).
    """
    out, section, i = [], None, 0
    while i < len(lines):
        line = lines[i]
        if i + 1 < len(lines) and lines[i + 1].strip() and set(lines[i + 1].strip()) == {"-"}:
            section = line.strip()
        match = _FIELD.match(line) if section in _FIELD_SECTIONS else None
        if match is None:
            out.append(line)
            i += 1
            continue
        text, names = match["text"], match["name"].split(", ")
        body = []
        while i + 1 < len(lines) and lines[i + 1].startswith("    "):
            i += 1
            body.append(lines[i])
        typed = bool(body) and _TYPE.match(text) is not None and len(text) <= 60
        for one in names:
            out += ([f"{one} : {text}"] if typed else [one, "    " + text]) + body
        i += 1
    lines[:] = out


def _skip_namedtuple_fields(app, what, name, obj, skip, options):
    """A NamedTuple's fields carry Python's own docstring, "Alias for field number N", which tells a reader
    nothing; the class docstring describes them (KernelConstants, KernelSwitches, PoolGeometry)."""
    doc = getattr(obj, "__doc__", None) or ""
    return True if doc.startswith("Alias for field number") else None


def setup(app):
    app.connect("autodoc-process-docstring", _fields_as_descriptions, priority=400)  # before napoleon (500)
    app.connect("autodoc-skip-member", _skip_namedtuple_fields)
    app.connect("builder-inited", _prepare)
    app.connect("html-page-context", _download_links)
    app.connect("build-finished", _write_downloads)
