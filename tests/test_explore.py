""""Explore one neuron" (docs/explore.md): its JavaScript twin against the library, and the page's controls.

The twin (``docs/_static/explore/neuron.js``) is written apart from the library, in float64 and in the
operation order of ``reference/steps.py``.  On random neurons (``tests/explore_cases.py``: T 2..20, random
constants, both rules, the clamp binding, the warm-up taking over, ``du = +-0`` at a spike) it must give the
library's spikes and branches exactly and every other number within ``RTOL`` of the library's float64
value, relative to the largest magnitude of that quantity in the case (so a term that cancels to ~1e-17
is compared on the scale of its neighbours; measured: <= 1.4e-15, the last bits of a different ``exp``
and ``pow``).

Two tiers: the unit tier runs the twin in Node.js when it is installed (fast feedback while editing the
script, no site build); the site tier (``-m site``, CI's browser run) runs it in headless Chromium inside
the built page, and drives the page's controls (a preset, a slider moved by keyboard, a presynaptic spike
toggled, the URL reopened) checking that the table shows the library's numbers.
"""
import json
import os
import re
import shutil
import subprocess
import tempfile

import numpy as np
import pytest

from explore_cases import library_neuron, random_cases
from test_site import browser  # noqa: F401  (the fixture: the built site in headless Chromium)

ROOT = os.path.join(os.path.dirname(__file__), "..")
TWIN = os.path.join(ROOT, "docs", "_static", "explore", "neuron.js")
RTOL = 1e-9
N_CASES = 240
ARRAYS = ("u", "du", "a", "f", "G", "inter", "intra", "c", "h", "delta")


def _compare(case, got):
    lib = library_neuron(case)
    assert got["s"] == lib["s"].tolist(), case
    assert got["branch"] == lib["branch"], case
    for name in ARRAYS + ("D",):
        if name not in lib:
            assert got[name] is None, (name, case)
            continue
        want, have = np.asarray(lib[name], float), np.asarray(got[name], float)
        scale = max(float(np.abs(want).max()), 1e-300)
        assert np.abs(have - want).max() <= RTOL * scale, (name, case, have, want)
    if case["rule"] == "paper2020":
        assert got["rate"] == lib["rate"]
    return lib


def _coverage(cases, libs):
    """What the random cases exercised: both rules, every branch, the clamp, du = +-0 at a spike."""
    seen = {"final": 0, "paper2020": 0, "warm-up": 0, "inter (fired)": 0, "intra (silent)": 0,
            "clamp": 0, "du=0 spike": 0, "paper2020 warm-up": 0, "paper2020 tsslbp": 0}
    for case, lib in zip(cases, libs):
        seen[case["rule"]] += 1
        for b in set(lib["branch"]):
            seen[b] += 1
        spiking = lib["s"] > 0
        if case["rule"] == "final" and case["inter"] and np.any(spiking & (lib["du"] > 0) & (lib["du"] < 1 / 8)):
            seen["clamp"] += 1
        seen["du=0 spike"] += bool(np.any(spiking & (lib["du"] == 0)))
        if case["rule"] == "paper2020":
            seen["paper2020 warm-up" if lib["branch"][0] == "warm-up" else "paper2020 tsslbp"] += 1
    return seen


def _check_all(cases, results):
    libs = [_compare(c, r) for c, r in zip(cases, results)]
    seen = _coverage(cases, libs)
    assert all(n >= 5 for n in seen.values()), seen
    return seen


# ------------------------------------------------------------------------------------ unit tier: Node.js
def test_twin_equals_the_library_in_node():
    node = shutil.which("node") or shutil.which("nodejs")
    if node is None:
        pytest.skip("no Node.js: the browser test (-m site) checks the twin")
    cases = random_cases(N_CASES, seed=20261207)
    js = ("require(process.argv[1]); const cs = JSON.parse(require('fs').readFileSync(0, 'utf8'));"
          "process.stdout.write(JSON.stringify({r: cs.map(c => globalThis.tsslbp.neuron(c)),"
          " k: globalThis.tsslbp.constants}));")
    out = json.loads(subprocess.run([node, "-e", js, os.path.abspath(TWIN)], input=json.dumps(cases),
                                    capture_output=True, text=True, check=True, timeout=120).stdout)
    _check_all(cases, out["r"])
    _check_constants(out["k"])


def _check_constants(k):
    from reference.paper2020 import MAX_INV_DU_2020, RATE_THRESHOLD_2020
    from reference.params import MAX_INV_DU, WARMUP_SIGMA, WARMUP_Z_CLIP
    assert k == {"max_inv_du": MAX_INV_DU, "max_inv_du_2020": MAX_INV_DU_2020, "warmup_sigma": WARMUP_SIGMA,
                 "warmup_z_clip": WARMUP_Z_CLIP, "rate_threshold_2020": RATE_THRESHOLD_2020}


def test_the_pages_python_example_prints_what_it_says():
    """The code block of docs/explore.md runs and gives the delta its comment states."""
    text = open(os.path.join(ROOT, "docs", "explore.md"), encoding="utf-8").read()
    code = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    scope = {}
    exec(code, scope)
    stated = [float(v) for v in re.search(r"# \[([^\]]+)\]", code).group(1).split(",")]
    assert np.allclose(scope["delta"][:, 0], stated, rtol=5e-4, atol=0)


# ------------------------------------------------------------------------------------ site tier: Chromium
site = pytest.mark.site


@pytest.fixture(scope="module")
def explorer(browser):
    from test_site import _open
    page, problems = _open(browser, "explore.html", wait_math=True)
    page.wait_for_function("() => window.tsslbpExplore !== undefined")
    yield page, problems
    page.close()


def _table(page):
    """{quantity: [cell text per step]} of the page's table of numbers."""
    return page.evaluate("""() => Object.fromEntries(Array.from(document.querySelectorAll('#explore-numbers tr[data-q]'))
        .map(r => [r.dataset.q, Array.from(r.querySelectorAll('td')).map(td => td.textContent)]))""")


def _shows_the_library(page):
    """The table equals the library's numbers for the page's current state, to the 4 digits shown."""
    st = page.evaluate("() => window.tsslbpExplore.state()")
    x = st["x"]
    if st["input"] == "spikes":
        from reference.neuron import psp
        x = (st["w"] * psp(np.asarray(st["pre"], float)[:, None], st["tau_s"])[:, 0]).tolist()
    case = {k: st[k] for k in ("g", "tau_m", "tau_s", "threshold", "rule", "inter", "intra", "warmup", "rate_threshold")}
    case["x"] = x
    lib = library_neuron(case)
    shown = _table(page)
    assert shown["branch"] == lib["branch"]
    for name in ("u", "du", "a", "G", "inter", "intra", "delta", "f") + (("h",) if st["rule"] == "paper2020" else ("c",)):
        for text, want in zip(shown[name], lib[name]):
            assert abs(float(text) - want) <= 5e-4 * abs(want) + 1e-15, (name, text, want)
    return st, lib


@site
def test_twin_equals_the_library_in_the_browser(explorer):
    page, problems = explorer
    cases = random_cases(N_CASES, seed=20261207 + 1)
    results = page.evaluate("cases => cases.map(c => window.tsslbp.neuron(c))", cases)
    seen = _check_all(cases, results)
    _check_constants(page.evaluate("() => window.tsslbp.constants"))
    assert not problems, problems
    assert seen["final"] + seen["paper2020"] == N_CASES


@site
def test_the_controls_change_the_numbers_to_the_librarys(explorer, browser):
    page, problems = explorer
    shots = os.path.join(os.environ.get("TMPDIR", tempfile.gettempdir()), "tsslbp-site")
    os.makedirs(shots, exist_ok=True)
    page.click("button[data-preset=lesson7]")
    st, lib = _shows_the_library(page)
    assert st["T"] == 3 and [round(v, 4) for v in lib["delta"]] == [-0.0151, -0.0682, 0.0154]  # lesson 7, section 0
    page.screenshot(path=os.path.join(shots, "explore_lesson7.png"), full_page=True)
    before = _table(page)["delta"]
    page.focus("#ctl-tau_m")                    # the slider, moved as a keyboard user moves it: 5 -> 5.3
    for _ in range(3):
        page.keyboard.press("ArrowRight")
    st, _ = _shows_the_library(page)
    assert st["tau_m"] == pytest.approx(5.3) and _table(page)["delta"] != before
    page.select_option("#ctl-input", "spikes")  # a presynaptic train times w = 1.5: spikes at steps 0 and 1
    page.click(".spike-toggle[data-k='0']")
    st, lib = _shows_the_library(page)
    assert st["pre"] == [1, 0, 0] and not lib["s"].any()  # x = 1.5 a_pre = 0.5, 0.333, 0.222: silent
    page.click(".spike-toggle[data-k='1']")
    st, lib = _shows_the_library(page)
    assert st["pre"] == [1, 1, 0] and lib["s"].tolist() == [0, 1, 0]
    url = page.url                             # the state is in the URL: reopening it shows the same numbers
    again = browser[0].new_page()
    again.goto(url, wait_until="load")
    again.wait_for_function("() => window.tsslbpExplore !== undefined")
    assert _table(again) == _table(page)
    again.close()
    for name in ("grazing", "silence", "twice"):
        page.click(f"button[data-preset={name}]")
        _shows_the_library(page)
        page.screenshot(path=os.path.join(shots, f"explore_{name}.png"), full_page=True)
    assert not problems, problems


@site
def test_every_control_has_a_label(explorer):
    page, _ = explorer
    unlabelled = page.evaluate("""() => Array.from(document.querySelectorAll('#explore-app input, #explore-app select, #explore-app button'))
        .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !e.textContent.trim()).map(e => e.id || e.className)""")
    assert unlabelled == []


@site
def test_the_lessons_links_open_their_own_neurons(browser):
    """Lessons 1, 4, 5, 6 and 7 link their hand-worked neurons (``Lesson.explore``); each link opens the
    page on that neuron, and the page shows the library's numbers for it."""
    from test_site import _open
    linked = {}
    for lesson in ("01_one_neuron", "04_inter_neuron", "05_intra_neuron", "06_warmup", "07_full_backward"):
        page, problems = _open(browser, f"tutorials/{lesson}.html")
        hrefs = page.eval_on_selector_all("a.explore-link", "els => els.map(e => e.href)")
        page.close()
        assert hrefs and not problems, (lesson, problems)
        linked[lesson] = hrefs
        for href in hrefs:
            target = browser[0].new_page()
            target.goto(href, wait_until="load")
            target.wait_for_function("() => window.tsslbpExplore !== undefined")
            st, lib = _shows_the_library(target)
            assert st["T"] == len(lib["u"]) >= 3
            target.close()
    assert len(linked["05_intra_neuron"]) == 2  # the hand-made neuron and the paper-era reset record


@site
def test_a_drag_holds_its_axis_and_bad_typing_changes_nothing(explorer):
    """Dragging a bar holds the plot's value axis still (else a still pointer near the edge pushes the
    value on without end: x[1] reached -3.7e6 in 15 one-pixel moves before); an empty or invalid entry
    leaves the neuron as it was."""
    page, problems = explorer
    page.click("button[data-preset=lesson7]")
    page.evaluate("() => window.scrollTo(0, document.getElementById('plot-x').getBoundingClientRect().top"
                  " + window.scrollY - 500)")  # in view, below the sticky panel
    box = page.locator("#plot-x").bounding_box()
    x_mid = box["x"] + box["width"] * (56 + (640 - 56 - 12) * 1.5 / 3) / 640   # the bar of step 1
    page.mouse.move(x_mid, box["y"] + box["height"] * 0.1)
    page.mouse.down()
    for i in range(15):
        page.mouse.move(x_mid, box["y"] + box["height"] * 0.1 + (i % 2))
    page.mouse.up()
    x1 = page.evaluate("() => window.tsslbpExplore.state().x[1]")
    assert 1.0 < x1 < 1.4, x1  # near the top of an axis that reached 1.2 (x[2]) plus its padding
    assert page.evaluate("() => window.getSelection().toString()") == ""
    before = page.evaluate("() => window.tsslbpExplore.state()")
    page.fill("#ctl-T-n", "")
    page.dispatch_event("#ctl-T-n", "change")
    page.fill(".g-in[data-k='1']", "")  # what a number input reports for "1e" or a cleared box
    page.dispatch_event(".g-in[data-k='1']", "change")
    assert page.evaluate("() => window.tsslbpExplore.state()") == before
    _shows_the_library(page)
    assert not problems, problems


@site
def test_a_phone_sized_page_keeps_its_plots_readable(browser):
    """At 400 px wide the plots shrink (viewBox 640): their tick labels still render at least 9 px tall
    (they were 7 px before the narrow-screen rule of site.css), and display equations wider than the
    screen scroll inside their box instead of running off the page."""
    from test_site import _open

    page, problems = _open(browser, "explore.html", wait_math=True)
    try:
        page.set_viewport_size({"width": 400, "height": 900})
        page.wait_for_timeout(300)
        heights = page.evaluate("""() => Array.from(document.querySelectorAll('svg.explore-plot .tick'))
            .map(t => t.getBoundingClientRect().height).filter(h => h > 0)""")
        assert heights and min(heights) >= 9, min(heights)
        wide = page.evaluate("""() => Array.from(document.querySelectorAll('mjx-container[display="true"]'))
            .filter(m => m.scrollWidth > m.clientWidth + 1).map(m => getComputedStyle(m).overflowX)""")
        assert wide and set(wide) == {"auto"}, wide  # some equation is wider than 400 px, and it scrolls
        assert page.evaluate("() => document.documentElement.scrollWidth") <= 400 + 1
        assert not problems, problems
    finally:
        page.close()


@site
def test_the_control_panel_can_be_unpinned_and_no_equation_is_cut(explorer):
    """Issue 34 (R5): on a wide screen the sticky control panel took a third of the window and cut its own
    table, with no way to let it scroll away; and a display equation ran past the page's right edge.  The
    pin button releases and restores the panel, and every display equation fits its column."""
    page, problems = explorer
    position = "() => getComputedStyle(document.getElementById('explore-app')).position"
    assert page.evaluate(position) == "sticky"
    page.click("#explore-pin")
    assert page.evaluate(position) == "static"
    assert page.get_attribute("#explore-pin", "aria-pressed") == "false"
    page.click("#explore-pin")
    assert page.evaluate(position) == "sticky" and page.get_attribute("#explore-pin", "aria-pressed") == "true"
    cut = page.evaluate("""() => Array.from(document.querySelectorAll('mjx-container[display="true"]'))
        .filter(m => m.scrollWidth > m.clientWidth + 1).map(m => m.textContent.slice(0, 40))""")
    assert cut == [], cut
    assert problems == []
