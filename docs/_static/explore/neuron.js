// One spiking neuron, forward and backward, in plain JavaScript: the twin behind "Explore one neuron".
//
// Written apart from the library, from the equations of docs/paper-notes.md (sections 1, 3 and 7), in
// float64 and in the operation order of reference/steps.py, so that its spikes are the library's and its
// numbers agree to rounding.  tests/test_explore.py checks it against reference.neuron.lif_forward,
// reference.tsslbp.compose_delta and reference.paper2020.paper2020_delta on random neurons.
//
//   window.tsslbp.neuron({x, g, tau_m, tau_s, threshold, rule, inter, intra, warmup, rate_threshold})
//
// x, g: arrays of length T (input current, and g[k] = dL/da[k]); rule "final" or "paper2020";
// inter, intra: booleans (the final rule's ablations; the paper-era rule has intra only);
// warmup: "per-neuron" (the final rule's default), "always" or "never" (final rule only);
// rate_threshold: the paper-era layer switch, here the neuron's own firing rate (default 0.1).
// Returns arrays of length T: u (before reset), du, s, a, f (warm-up surrogate), G (error on a spike),
// inter, intra, c (the carried error, final rule), h (the reset error, paper-era), delta, and branch
// (the library's names: "warm-up", "inter (fired)", "intra (silent)"); plus D (T x T, paper-era) and rate.
(function (root) {
  "use strict";

  // The constants of the rule (reference/params.py and reference/paper2020.py; the test compares them).
  const constants = {
    max_inv_du: 8,          // the final rule's clamp of 1/du
    max_inv_du_2020: 10,    // the paper-era clamp
    warmup_sigma: 0.2,      // width of the warm-up sigmoid
    warmup_z_clip: 8,       // its argument is clipped to [-8, 8]
    rate_threshold_2020: 0.1,
  };
  const BRANCH = { warmup: "warm-up", inter: "inter (fired)", intra: "intra (silent)" };

  function zeros(n) { return new Array(n).fill(0); }

  // The synapse's filter a[t] = a[t-1] + (s[t] - a[t-1]) / tau_s, a[-1] = 0 (steps.psp_step).
  function psp(s, tau_s) {
    const theta_s = 1 / tau_s;
    const a = zeros(s.length);
    let prev = 0;
    for (let t = 0; t < s.length; t++) { prev = prev + (s[t] - prev) * theta_s; a[t] = prev; }
    return a;
  }

  // The LIF neuron (steps.lif_step): du = -theta_m u_r + x, u = u_r + du, s = [u > V_th], u_r = u (1 - s).
  function forward(x, tau_m, tau_s, threshold) {
    const T = x.length, neg_theta_m = -(1 / tau_m);
    const u = zeros(T), du = zeros(T), s = zeros(T);
    let mem = 0;
    for (let t = 0; t < T; t++) {
      du[t] = neg_theta_m * mem + x[t];
      u[t] = mem + du[t];
      s[t] = u[t] > threshold ? 1 : 0;
      mem = s[t] ? 0 : u[t];
    }
    return { u, du, s, a: psp(s, tau_s) };
  }

  // The PSP kernel eps[k] = theta_s (1 - theta_s)^k, and the spike error G[k] = sum_{m>=k} eps[m-k] g[m].
  function spikeError(g, tau_s) {
    const T = g.length, theta_s = 1 / tau_s;
    const eps = zeros(T).map((_, k) => theta_s * Math.pow(1 - theta_s, k));
    const G = zeros(T);
    for (let k = 0; k < T; k++) for (let m = k; m < T; m++) G[k] += eps[m - k] * g[m];
    return G;
  }

  // The warm-up surrogate f(u) = e^z / ((1 + e^z)^2 sigma), z = clip((V_th - u)/sigma, -8, 8).
  function surrogate(u, threshold) {
    const sg = constants.warmup_sigma, zc = constants.warmup_z_clip;
    return u.map((ui) => {
      const e = Math.exp(Math.min(Math.max((-1 * ui + threshold) / sg, -zc), zc));
      return e / ((1 + e) * (1 + e) * sg);
    });
  }

  // The final rule (paper-notes section 3): inter, intra carried by c, the warm-up on the own PSP.
  function finalRule(st, g, o) {
    const T = g.length, theta_m = 1 / o.tau_m;
    const G = spikeError(g, o.tau_s);
    const f = surrogate(st.u, o.threshold);
    const adv = st.du.map((d, k) => (st.s[k] ? Math.min(Math.max(1 / d, 0), constants.max_inv_du) : 0));
    const inter = G.map((Gk, k) => (o.inter ? adv[k] * Gk : 0));
    const intra = zeros(T), c = zeros(T), delta = zeros(T), branch = new Array(T);
    let carried = 0;
    for (let k = T - 1; k >= 0; k--) {
      c[k] = carried;                       // the error carried into step k from the steps after it
      const s = st.s[k];
      intra[k] = o.intra ? carried * theta_m * st.u[k] * adv[k] + carried * (1 - theta_m) * (1 - s) : 0;
      const pre = inter[k] + intra[k];
      carried = o.intra ? pre * s + carried * (1 - s) * (1 - theta_m) : 0;
      const warm = o.warmup === "always" || (o.warmup === "per-neuron" && st.a[k] < 1 / (4 * o.tau_s));
      delta[k] = warm ? G[k] * f[k] : pre;
      branch[k] = warm ? BRANCH.warmup : (s ? BRANCH.inter : BRANCH.intra);
    }
    return { G, f, inter, intra, c, h: null, D: null, rate: null, delta, branch };
  }

  // The paper-era rule (paper-notes section 7), with the layer switch on the neuron's own firing rate.
  function paperEraRule(st, g, o) {
    const T = g.length, theta_m = 1 / o.tau_m, decay = 1 - theta_m, s = st.s;
    const D = zeros(T).map(() => zeros(T));   // D[j][m] = theta_m u[j] (1 - theta_m)^(m-j-1), j and m consecutive spikes
    for (let j = 0; j < T; j++) {
      if (!s[j]) continue;
      for (let m = j + 1; m < T; m++) if (s[m]) { D[j][m] = theta_m * st.u[j] * Math.pow(decay, m - j - 1); break; }
    }
    const h = zeros(T);                        // h = D g, backwards through q (reset_error)
    let q = 0;
    if (o.intra) {
      for (let j = T - 2; j >= 0; j--) {
        q = s[j + 1] * g[j + 1] + (1 - s[j + 1]) * decay * q;
        h[j] = s[j] * theta_m * st.u[j] * q;
      }
    }
    const Pg = spikeError(g, o.tau_s), Ph = spikeError(h, o.tau_s);
    const G = spikeError(g.map((gk, k) => gk + h[k]), o.tau_s);   // grad_a = P (g + h)
    const f = surrogate(st.u, o.threshold);
    const mx = constants.max_inv_du_2020;
    const clip = st.du.map((d, k) => (s[k] ? Math.min(Math.max(1 / d, -mx), mx) : 0));
    const rate = s.reduce((n, v) => n + v, 0) / T;
    const rt = o.rate_threshold == null ? constants.rate_threshold_2020 : o.rate_threshold;
    const tsslbp = rate > rt;
    const inter = Pg.map((v, k) => v * clip[k]), intra = Ph.map((v, k) => v * clip[k]);
    const delta = G.map((v, k) => (tsslbp ? v * clip[k] : v * f[k]));
    const branch = s.map((sk) => (tsslbp ? (sk ? BRANCH.inter : BRANCH.intra) : BRANCH.warmup));
    return { G, f, inter, intra, c: null, h, D, rate, delta, branch };
  }

  function neuron(opts) {
    const o = Object.assign({ tau_m: 5, tau_s: 3, threshold: 1, rule: "final", inter: true, intra: true,
      warmup: "per-neuron", rate_threshold: constants.rate_threshold_2020 }, opts);
    const x = o.x.map(Number), g = o.g.map(Number);
    if (x.length !== g.length || x.length < 1) throw new Error("x and g must be arrays of the same length T >= 1");
    if (!(o.tau_m >= 1) || !(o.tau_s >= 1)) throw new Error("tau_m and tau_s must be >= 1 time step");
    if (["per-neuron", "always", "never"].indexOf(o.warmup) < 0) throw new Error("warmup: per-neuron, always or never");
    if (o.rule !== "paper2020" && o.rule !== "final") throw new Error("rule: final or paper2020");
    const st = forward(x, o.tau_m, o.tau_s, o.threshold);
    const back = o.rule === "paper2020" ? paperEraRule(st, g, o) : finalRule(st, g, o);
    return Object.assign({ u: st.u, du: st.du, s: st.s, a: st.a }, back);
  }

  root.tsslbp = { neuron, psp, constants, BRANCH };
})(typeof window !== "undefined" ? window : globalThis);
