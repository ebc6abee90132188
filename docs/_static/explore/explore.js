// The "Explore one neuron" page: controls, SVG plots and the table of numbers around window.tsslbp.neuron
// (neuron.js).  Every change recomputes the neuron and redraws; the state lives in the URL's hash, so a
// configuration can be sent as a link (docs/explore.md says what each part shows).
(function () {
  "use strict";
  const N = window.tsslbp;
  const COLORS = { "warm-up": "#7f7f7f", "inter (fired)": "#d62728", "intra (silent)": "#1f77b4" }; // plots.BRANCH_COLORS
  const TEXT = { "warm-up": "#595959", "inter (fired)": "#c21f20", "intra (silent)": "#1f77b4" }; // the same, 4.5:1 on white
  const PRESETS = {
    lesson7: { label: "Lesson 7, section 0 (by hand)", T: 3, tau_m: 5, tau_s: 3, threshold: 1, rule: "final",
      x: [0.6, 0.7, 1.2], g: [0, -1 / 6, 1 / 18],
      note: "Lesson 7's neuron: g = a - target with target [0, 0.5, 0.5]. Step 0 is silent with a < 1/(4 tau_s): the warm-up." },
    grazing: { label: "A grazing spike: the clamp binds", T: 6, tau_m: 5, tau_s: 3, threshold: 1, rule: "final",
      x: [0.275, 0.275, 0.275, 0.275, 0.275, 0.275], g: [0, 0, 0, 0, 0, -0.2],
      note: "The membrane creeps over the threshold at step 5 with du = 0.09: 1/du = 11.1, clamped to 8 (the highlighted cell)." },
    silence: { label: "A spike, then silence: the warm-up takes over", T: 8, tau_m: 5, tau_s: 3, threshold: 1,
      rule: "final", x: [1.2, 0, 0, 0, 0, 0, 0, 0], g: [0, 0, 0, 0, 0, -0.1, -0.1, -0.1],
      note: "The PSP decays below 1/(4 tau_s) at step 4: from there the warm-up. Steps 1-3 get delta 0: they are silent, and a warm-up step carries nothing back (c = 0). The warm-up deltas are small: u = 0 is far below the threshold, f(0) = 0.033. Raise x[4..7] and watch them grow." },
    silent: { label: "A silent neuron", T: 5, tau_m: 5, tau_s: 3, threshold: 1, rule: "final",
      x: [0.2, 0.2, 0.2, 0.2, 0.2], g: [-0.1, -0.1, -0.1, -0.1, -0.1],
      note: "It never fires: without the warm-up (set it to never) every delta is 0; with it, G f(u), largest where u is nearest the threshold." },
    twice: { label: "Paper-era: the reset record D of a neuron spiking twice", T: 5, tau_m: 5, tau_s: 2,
      threshold: 1, rule: "paper2020", x: [1.1, 0.3, 0.5, 1.0, 0.2], g: [0.1, -0.1, 0.05, 0.1, -0.05],
      note: "Spikes at 0 and 3: D[0, 3] = theta_m u[0] (1 - theta_m)^2 = 0.1408 (the table below), so h[0] = D[0, 3] g[3]. Rate 0.4 > 0.1: TSSL-BP at every step." },
  };
  const DEFAULTS = { T: 5, tau_m: 5, tau_s: 3, threshold: 1, rule: "final", inter: true, intra: true,
    warmup: "per-neuron", rate_threshold: 0.1, input: "current", w: 1.5, pre: null, x: null, g: null };
  let state = null;

  // ------------------------------------------------------------------ state <-> URL
  function fromPreset(name) {
    const p = PRESETS[name];
    return Object.assign({}, DEFAULTS, p, { x: p.x.slice(), g: p.g.slice(), pre: zeros(p.T), preset: name });
  }
  function zeros(n) { return new Array(n).fill(0); }
  function resize(a, n, fill) { const b = (a || []).slice(0, n); while (b.length < n) b.push(fill); return b; }
  function encode(s) {
    const q = new URLSearchParams();
    for (const k of ["T", "tau_m", "tau_s", "threshold", "rule", "warmup", "rate_threshold", "input", "w"]) q.set(k, s[k]);
    q.set("inter", s.inter ? 1 : 0); q.set("intra", s.intra ? 1 : 0);
    const exact = (v) => (Object.is(v, -0) ? "-0" : String(v));  // shortest round-trip form: the very float
    q.set("x", s.x.map(exact).join(","));
    q.set("g", s.g.map(exact).join(","));
    q.set("pre", s.pre.join(""));
    return q.toString();
  }
  function decode(hash) {
    const q = new URLSearchParams(hash.replace(/^#/, ""));
    if (q.has("preset") && PRESETS[q.get("preset")]) return fromPreset(q.get("preset"));
    if (!q.has("x")) return null;
    const s = Object.assign({}, DEFAULTS);
    const num = (k, lo, hi) => { const v = Number(q.get(k)); return q.has(k) && isFinite(v) ? Math.min(Math.max(v, lo), hi) : s[k]; };
    s.T = Math.round(num("T", 2, 20)); s.tau_m = num("tau_m", 1, 50); s.tau_s = num("tau_s", 1, 50);
    s.threshold = num("threshold", -5, 5); s.rate_threshold = num("rate_threshold", 0, 1); s.w = num("w", -10, 10);
    s.rule = q.get("rule") === "paper2020" ? "paper2020" : "final";
    s.warmup = ["per-neuron", "always", "never"].indexOf(q.get("warmup")) >= 0 ? q.get("warmup") : "per-neuron";
    s.input = q.get("input") === "spikes" ? "spikes" : "current";
    s.inter = q.get("inter") !== "0"; s.intra = q.get("intra") !== "0";
    const arr = (k) => (q.get(k) || "").split(",").map(Number).map((v) => (isFinite(v) ? v : 0));
    s.x = resize(arr("x"), s.T, 0); s.g = resize(arr("g"), s.T, 0);
    s.pre = resize((q.get("pre") || "").split("").map((c) => (c === "1" ? 1 : 0)), s.T, 0);
    return s;
  }
  function current(s) {  // the input current: typed, or w times the PSP of the presynaptic train
    return s.input === "spikes" ? N.psp(s.pre, s.tau_s).map((a) => s.w * a) : s.x;
  }
  function compute(s) {
    return N.neuron({ x: current(s), g: s.g, tau_m: s.tau_m, tau_s: s.tau_s, threshold: s.threshold, rule: s.rule,
      inter: s.inter, intra: s.intra, warmup: s.warmup, rate_threshold: s.rate_threshold });
  }

  // ------------------------------------------------------------------ SVG plots
  const SVGNS = "http://www.w3.org/2000/svg";
  function el(name, attrs, parent) {
    const e = document.createElementNS(SVGNS, name);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(e);
    return e;
  }
  const W = 640, H = 170, ML = 56, MR = 12, MT = 10, MB = 26;
  // A frame with axes for T steps and the value range [lo, hi]; returns coordinate maps.
  const frozen = {};  // svg id -> [lo, hi]: a plot's value axis held still while a drag on it lasts
  function frame(svg, T, lo, hi, ylabel) {
    svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    if (hi - lo < 1e-12) { hi += 0.5; lo -= 0.5; }
    let pad = 0.08 * (hi - lo); lo -= pad; hi += pad;
    if (frozen[svg.id]) { [lo, hi] = frozen[svg.id]; pad = 0; }
    const X = (k) => ML + (k + 0.5) * (W - ML - MR) / T;
    const Y = (v) => MT + (hi - v) * (H - MT - MB) / (hi - lo);
    el("rect", { x: ML, y: MT, width: W - ML - MR, height: H - MT - MB, class: "frame" }, svg);
    if (lo < 0 && hi > 0) el("line", { x1: ML, x2: W - MR, y1: Y(0), y2: Y(0), class: "zero" }, svg);
    for (let k = 0; k < T; k++) {
      const t = el("text", { x: X(k), y: H - 8, class: "tick", "text-anchor": "middle" }, svg);
      t.textContent = k;
    }
    for (const v of [lo + pad, hi - pad]) {
      const t = el("text", { x: ML - 6, y: Y(v) + 4, class: "tick", "text-anchor": "end" }, svg);
      t.textContent = fmt(v, 3);
    }
    const lab = el("text", { x: 12, y: MT + (H - MT - MB) / 2, class: "ylabel", "text-anchor": "middle",
      transform: `rotate(-90 12 ${MT + (H - MT - MB) / 2})` }, svg);
    lab.textContent = ylabel;
    return { X, Y, lo, hi, bw: 0.7 * (W - ML - MR) / T };
  }
  function range(...arrays) {
    const v = [].concat(...arrays).filter((x) => isFinite(x));
    return [Math.min(0, ...v), Math.max(0, ...v)];
  }
  function bars(svg, f, values, cls, colors, offset = 0, width = 1) {
    values.forEach((v, k) => {
      const y0 = f.Y(0), y1 = f.Y(v);
      el("rect", { x: f.X(k) - f.bw / 2 + offset * f.bw, y: Math.min(y0, y1), width: f.bw * width,
        height: Math.max(Math.abs(y1 - y0), 0.5), class: cls, style: colors ? `fill:${colors[k]}` : "" }, svg);
    });
  }
  function line(svg, f, values, cls) {
    el("polyline", { points: values.map((v, k) => `${f.X(k)},${f.Y(v)}`).join(" "), class: cls }, svg);
    values.forEach((v, k) => el("circle", { cx: f.X(k), cy: f.Y(v), r: 3, class: cls + " dot" }, svg));
  }
  function hline(svg, f, v, cls, label) {
    el("line", { x1: ML, x2: W - MR, y1: f.Y(v), y2: f.Y(v), class: cls }, svg);
    const t = el("text", { x: ML + 4, y: f.Y(v) - 6, class: "tick label " + cls, "text-anchor": "start" }, svg);
    t.textContent = label;
  }
  // Drag on a bar plot to set the value of the step under the pointer.
  function draggable(svg, f, onValue) {
    const pick = (ev) => {
      const r = svg.getBoundingClientRect();
      const px = (ev.clientX - r.left) * W / r.width, py = (ev.clientY - r.top) * H / r.height;
      const T = state.T, k = Math.floor((px - ML) / ((W - ML - MR) / T));
      if (k < 0 || k >= T) return;
      const v = f.hi - (py - MT) * (f.hi - f.lo) / (H - MT - MB);
      onValue(k, +v.toPrecision(3));
    };
    svg.onpointerdown = (ev) => {
      ev.preventDefault();                  // no text selection while dragging
      svg.setPointerCapture(ev.pointerId);
      frozen[svg.id] = [f.lo, f.hi];        // else the axis rescales under a still pointer and the value runs away
      pick(ev);
    };
    svg.onpointermove = (ev) => { if (ev.buttons && frozen[svg.id]) pick(ev); };
    svg.onpointerup = svg.onpointercancel = () => { delete frozen[svg.id]; update(); };
  }

  // ------------------------------------------------------------------ drawing
  function fmt(v, digits = 4, signedZero = false) {
    if (v === null || v === undefined) return "";
    if (typeof v === "string") return v;
    if (!isFinite(v)) return String(v);
    if (v === 0) return signedZero && Object.is(v, -0) ? "-0" : "0";
    return Number(v.toPrecision(digits)).toString();
  }
  function draw() {
    const s = state, r = compute(s), T = s.T, x = current(s);
    const $ = (id) => document.getElementById(id);
    const colors = r.branch.map((b) => COLORS[b]);
    // input
    let f = frame($("plot-x"), T, ...range(x), s.input === "spikes" ? "x = w a_pre" : "x[k]");
    bars($("plot-x"), f, x, "bar input");
    if (s.input === "current") draggable($("plot-x"), f, (k, v) => { s.x[k] = v; update(); });
    else $("plot-x").onpointerdown = $("plot-x").onpointermove = null;
    // membrane
    f = frame($("plot-u"), T, ...range(r.u, [s.threshold]), "u[k]");
    hline($("plot-u"), f, s.threshold, "threshold", "threshold V_th");
    line($("plot-u"), f, r.u, "trace");
    r.s.forEach((sk, k) => { if (sk) {
      el("path", { d: `M${f.X(k) - 6},${f.Y(r.u[k]) - 4} l6,-10 l6,10 z`, class: "spike" }, $("plot-u"));
      el("line", { x1: f.X(k), x2: f.X(k) + 10, y1: f.Y(r.u[k]), y2: f.Y(0), class: "reset" }, $("plot-u"));
    } });
    // PSP
    f = frame($("plot-a"), T, ...range(r.a, [1 / (4 * s.tau_s)]), "a[k]");
    hline($("plot-a"), f, 1 / (4 * s.tau_s), "warmline", "warm-up line 1/(4 tau_s)");
    line($("plot-a"), f, r.a, "trace psp");
    // g and G
    f = frame($("plot-g"), T, ...range(s.g, r.G), "g, G");
    bars($("plot-g"), f, s.g, "bar gbar", null, -0.25, 0.5);
    bars($("plot-g"), f, r.G, "bar Gbar", null, 0.25, 0.5);
    draggable($("plot-g"), f, (k, v) => { s.g[k] = v; update(); });
    // the terms and delta
    const paper = s.rule === "paper2020";
    const carried = paper ? r.h : r.c;
    f = frame($("plot-terms"), T, ...range(r.inter, r.intra, carried), "terms");
    const fade = (c) => r.branch.map((b) => (b === "warm-up" ? c + "55" : c));  // 8-digit hex: alpha
    bars($("plot-terms"), f, r.inter, "bar", fade(COLORS["inter (fired)"]), -0.35, 0.33);
    bars($("plot-terms"), f, r.intra, "bar", fade(COLORS["intra (silent)"]), -0.0, 0.33);
    bars($("plot-terms"), f, carried, "bar carried", null, 0.35, 0.33);
    f = frame($("plot-delta"), T, ...range(r.delta), "delta[k]");
    bars($("plot-delta"), f, r.delta, "bar", colors);
    // the warm-up surrogate
    f = frame($("plot-f"), T, 0, 1.25, "f(u[k])");
    bars($("plot-f"), f, r.f, "bar", r.branch.map((b) => (b === "warm-up" ? COLORS["warm-up"] : "#cccccc")));
    $("legend-terms").textContent = paper
      ? "red: inter, s clip(1/du, -10, 10) times the error on a spike from g alone; blue: intra, the same factor times the error from h alone; gold: h = D g. Faded: steps where the warm-up makes delta instead."
      : "red: inter[k]; blue: intra[k]; gold: the carried c[k] it used. Faded: steps where the warm-up makes delta instead (the terms are computed, delta does not use them).";
    table(r, x);
    controls();
    const rate = paper ? ` Its firing rate ${fmt(r.rate)} is ${r.rate > s.rate_threshold ? "above" : "not above"} ` +
      `the switch ${fmt(s.rate_threshold)}: ${r.rate > s.rate_threshold ? "TSSL-BP" : "the warm-up"} at every step.` : "";
    $("explore-note").textContent = s.preset && PRESETS[s.preset] && encode(s) === encode(fromPreset(s.preset))
      ? PRESETS[s.preset].note : "";
    const summary = $("explore-summary");
    summary.setAttribute("aria-live", Object.keys(frozen).length ? "off" : "polite");  // quiet while dragging
    summary.textContent = `Spikes at steps [${r.s.map((v, k) => (v ? k : -1)).filter((k) => k >= 0).join(", ")}]; ` +
      `delta = [${r.delta.map((v) => fmt(v)).join(", ")}].` + rate + nothing(r);
    history.replaceState(null, "", "#" + encode(s));
  }
  // Steps on the intra branch whose delta is exactly 0: silent, and no error reached them (c = 0, or the
  // paper-era rule's TSSL-BP branch, which gives silent steps nothing). Said, so that the branch's name
  // "intra (silent)" is not read as "the intra term acted here".
  function nothing(r) {
    const ks = r.branch.map((b, k) => (b === "intra (silent)" && r.delta[k] === 0 ? k : -1)).filter((k) => k >= 0);
    return ks.length ? ` Steps [${ks.join(", ")}] are on the intra branch with delta 0: silent, and no error reached them.` : "";
  }
  function table(r, x) {
    const mx = state.rule === "paper2020" ? N.constants.max_inv_du_2020 : N.constants.max_inv_du;
    const factor = r.du.map((d, k) => (!r.s[k] ? 0 : state.rule === "paper2020" ? Math.min(Math.max(1 / d, -mx), mx)
      : Math.min(Math.max(1 / d, 0), mx)));
    const rows = [["x", x], ["du", r.du], ["1/du", r.du.map((d) => 1 / d)],
      [state.rule === "paper2020" ? "clip(1/du,-10,10) s" : "min(max(1/du,0),8) s", factor],
      ["u", r.u], ["s", r.s], ["a", r.a], ["g", state.g], ["G", r.G],
      ["inter", r.inter], state.rule === "paper2020" ? ["h", r.h] : ["c", r.c], ["intra", r.intra], ["f", r.f],
      ["delta", r.delta], ["branch", r.branch]];
    const t = document.getElementById("explore-numbers");
    let html = "<caption>Every number of the neuron, 4 significant digits</caption><thead><tr><th scope=\"col\">quantity</th>";
    for (let k = 0; k < state.T; k++) html += `<th scope="col">k = ${k}</th>`;
    html += "</tr></thead><tbody>";
    for (const [name, vals] of rows) {
      html += `<tr data-q="${name}"><th scope="row">${name}</th>`;
      vals.forEach((v, k) => {
        let style = name === "branch" || name === "delta" ? ` style="color:${TEXT[r.branch[k]]}"` : "";
        if (name.endsWith(" s") && r.s[k] && Math.abs(1 / r.du[k]) > mx) style = ' class="clamped" title="the clamp binds"';
        html += `<td${style}>${fmt(v, 4, name === "du")}</td>`;
      });
      html += "</tr>";
    }
    t.innerHTML = html + "</tbody>";
    const d = document.getElementById("explore-D");
    if (state.rule !== "paper2020") { d.hidden = true; return; }
    d.hidden = false;
    let dh = "<caption>The reset record D[j, m] (row j: the spike, column m: the next spike)</caption><thead><tr><th scope=\"col\">j \\ m</th>";
    for (let m = 0; m < state.T; m++) dh += `<th scope="col">${m}</th>`;
    dh += "</tr></thead><tbody>";
    r.D.forEach((row, j) => { dh += `<tr><th scope="row">${j}</th>` + row.map((v) => `<td>${fmt(v)}</td>`).join("") + "</tr>"; });
    d.innerHTML = dh + "</tbody>";
  }

  // ------------------------------------------------------------------ controls
  function controls() {
    const s = state, $ = (id) => document.getElementById(id);
    for (const k of ["T", "tau_m", "tau_s", "threshold", "rate_threshold", "w"]) {
      for (const suffix of ["", "-n"]) { const e = $(`ctl-${k}${suffix}`); if (e && document.activeElement !== e) e.value = s[k]; }
    }
    document.querySelectorAll("#explore-presets button").forEach((b) =>
      b.setAttribute("aria-pressed", String(b.dataset.preset === s.preset && encode(s) === encode(fromPreset(s.preset)))));
    $("ctl-rule").value = s.rule; $("ctl-warmup").value = s.warmup; $("ctl-input").value = s.input;
    $("ctl-inter").checked = s.inter; $("ctl-intra").checked = s.intra;
    const paper = s.rule === "paper2020";
    $("ctl-inter").disabled = paper; $("ctl-warmup").disabled = paper;
    $("ctl-rate_threshold").disabled = $("ctl-rate_threshold-n").disabled = !paper;
    $("ctl-w").disabled = $("ctl-w-n").disabled = s.input !== "spikes";
    // per-step inputs
    const box = $("explore-steps");
    const x = current(s);
    let html = "<caption>Per step: type a value, or drag on the plots</caption><thead><tr><th scope=\"col\"></th>";
    for (let k = 0; k < s.T; k++) html += `<th scope="col">k = ${k}</th>`;
    html += "</tr></thead><tbody><tr><th scope=\"row\">" + (s.input === "spikes" ? "presynaptic spike" : "input x[k]") + "</th>";
    for (let k = 0; k < s.T; k++) {
      html += s.input === "spikes"
        ? `<td><button type="button" class="spike-toggle" data-k="${k}" aria-pressed="${s.pre[k] ? "true" : "false"}" aria-label="presynaptic spike at step ${k}">${s.pre[k] ? "|" : "·"}</button></td>`
        : `<td><input type="number" step="0.05" class="x-in" data-k="${k}" aria-label="input current x at step ${k}" value="${+x[k].toPrecision(6)}" data-shown="${+x[k].toPrecision(6)}"></td>`;
    }
    html += "</tr><tr><th scope=\"row\">error g[k] = dL/da[k]</th>";
    for (let k = 0; k < s.T; k++) html += `<td><input type="number" step="0.01" class="g-in" data-k="${k}" aria-label="error g at step ${k}" value="${+s.g[k].toPrecision(6)}" data-shown="${+s.g[k].toPrecision(6)}"></td>`;
    const active = document.activeElement;  // keep the keyboard's place in the per-step inputs across a redraw
    const focused = active && box.contains(active) && active.dataset.k !== undefined ? [active.className, active.dataset.k] : null;
    box.innerHTML = html + "</tr></tbody>";
    if (focused) { const e = box.querySelector(`.${focused[0].split(" ")[0]}[data-k="${focused[1]}"]`); if (e) e.focus(); }
    const typed = (e, arr) => {  // an empty or invalid entry changes nothing: the shown value comes back
      const v = e.value.trim() === "" ? NaN : Number(e.value);
      // the box shows 6 digits: committing it untouched keeps the exact value (a lesson's, a link's)
      if (isFinite(v) && e.value !== e.dataset.shown) arr[+e.dataset.k] = v;
      update();
    };
    box.querySelectorAll(".x-in").forEach((e) => e.addEventListener("change", () => typed(e, s.x)));
    box.querySelectorAll(".g-in").forEach((e) => e.addEventListener("change", () => typed(e, s.g)));
    box.querySelectorAll(".spike-toggle").forEach((e) => e.addEventListener("click", () => { s.pre[+e.dataset.k] ^= 1; update(); }));
  }
  function bind() {
    const $ = (id) => document.getElementById(id);
    const numeric = (k, lo, hi, integer) => {
      const set = (v) => { if (String(v).trim() === "" || !isFinite(Number(v))) { controls(); return; }
        v = Math.min(Math.max(Number(v), lo), hi);
        state[k] = integer ? Math.round(v) : v;
        if (k === "T") { state.x = resize(state.x, state.T, 0); state.g = resize(state.g, state.T, 0); state.pre = resize(state.pre, state.T, 0); }
        update(); };
      $(`ctl-${k}`).addEventListener("input", (e) => set(e.target.value));
      $(`ctl-${k}-n`).addEventListener("change", (e) => set(e.target.value));
    };
    numeric("T", 2, 20, true); numeric("tau_m", 1, 50); numeric("tau_s", 1, 50); numeric("threshold", -5, 5);
    numeric("rate_threshold", 0, 1); numeric("w", -10, 10);
    $("ctl-rule").addEventListener("change", (e) => { state.rule = e.target.value; update(); });
    $("ctl-warmup").addEventListener("change", (e) => { state.warmup = e.target.value; update(); });
    $("ctl-input").addEventListener("change", (e) => { state.input = e.target.value; update(); });
    $("ctl-inter").addEventListener("change", (e) => { state.inter = e.target.checked; update(); });
    $("ctl-intra").addEventListener("change", (e) => { state.intra = e.target.checked; update(); });
    const presets = $("explore-presets");
    for (const name in PRESETS) {
      const b = document.createElement("button");
      b.type = "button"; b.textContent = PRESETS[name].label; b.dataset.preset = name;
      b.addEventListener("click", () => { state = fromPreset(name); update(); });
      b.setAttribute("aria-pressed", "false");
      presets.appendChild(b);
    }
    window.addEventListener("hashchange", () => {
      const s = decode(location.hash);
      if (s) { if (encode(s) !== encode(state)) { state = s; update(); } }
      else history.replaceState(null, "", location.pathname + location.search + "#" + encode(state));  // a heading link: keep the state in the address
    });
  }
  function update() { draw(); }

  function start() {
    const app = document.getElementById("explore-app");
    if (!app) return;
    const pin = document.getElementById("explore-pin");  // a view preference, not part of the state in the address
    if (pin) pin.addEventListener("click", () => {
      const pinned = pin.getAttribute("aria-pressed") !== "true";
      pin.setAttribute("aria-pressed", String(pinned));
      app.classList.toggle("unpinned", !pinned);
    });
    bind();
    state = decode(location.hash) || fromPreset("lesson7");
    update();
    window.tsslbpExplore = { state: () => JSON.parse(JSON.stringify(state)), compute: () => compute(state), presets: PRESETS };
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start); else start();
})();
