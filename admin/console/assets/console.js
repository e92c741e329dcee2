// streamd console: polls the admin server's /v1 endpoints and draws them. Plain JS, no build step.
// The token, when the server needs one, lives in this tab's sessionStorage and goes in a bearer header.
(function () {
  "use strict";
  const POLL_MS = 2000;
  const TOKEN_KEY = "streamd.admin.token";
  const $ = (sel) => document.querySelector(sel);
  const svgNS = "http://www.w3.org/2000/svg";

  function el(tag, attrs, ...kids) {
    const e = tag.startsWith("svg:") ? document.createElementNS(svgNS, tag.slice(4)) : document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") e.setAttribute("class", v);
      else if (k === "text") e.textContent = v;
      else e.setAttribute(k, v);
    }
    for (const k of kids) if (k !== null && k !== undefined) e.append(k);
    return e;
  }
  const fmt = (n, d) => (n === undefined || n === null || !isFinite(n)) ? "–" :
    n.toLocaleString("en-US", { maximumFractionDigits: d === undefined ? 0 : d, minimumFractionDigits: d === undefined ? 0 : d });
  const fmtRate = (r) => r >= 100 ? fmt(r) + "/s" : r >= 1 ? fmt(r, 1) + "/s" : r > 0 ? fmt(r, 2) + "/s" : "0/s";
  function fmtAgo(sec) {
    if (!isFinite(sec)) return "–";
    if (sec < 0) return "ahead " + fmtAgo(-sec);
    if (sec < 90) return fmt(sec, 1) + " s";
    if (sec < 5400) return fmt(sec / 60, 1) + " min";
    return fmt(sec / 3600, 1) + " h";
  }
  const clock = (ms) => new Date(ms).toISOString().slice(11, 19);

  // ---- fetching, with the token ----
  class Unauthorized extends Error {}
  async function get(path) {
    const headers = {};
    const tok = sessionStorage.getItem(TOKEN_KEY);
    if (tok) headers["Authorization"] = "Bearer " + tok;
    const r = await fetch(path, { headers, cache: "no-store" });
    if (r.status === 401) throw new Unauthorized(await r.text());
    if (r.status === 404) return null; // an endpoint this server leaves out
    if (!r.ok) throw new Error(path + ": HTTP " + r.status);
    return r.json();
  }
  async function ready() {
    const tok = sessionStorage.getItem(TOKEN_KEY);
    try {
      const r = await fetch("/readyz", { headers: tok ? { Authorization: "Bearer " + tok } : {}, cache: "no-store" });
      return r.ok;
    } catch (e) { return false; }
  }
  function askToken(message) {
    $("#login").hidden = false;
    $("#login-error").textContent = message || "";
    $("#token").focus();
  }
  $("#login-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $("#token").value.trim());
    $("#token").value = "";
    $("#login").hidden = true;
    poll();
  });
  $("#logout").addEventListener("click", () => { sessionStorage.removeItem(TOKEN_KEY); askToken(""); });

  // ---- pipeline graph ----
  const NODE_W = 210, NODE_H = 58, GAP_Y = 16, COL_GAP = 70, TOP = 26;
  function renderGraph(p) {
    $("#app").textContent = p.app;
    const t = p.transactions;
    $("#txn").textContent = `${fmt(t.committed)} transactions committed (${fmtRate(t.committed_rate)}), ${fmt(t.aborted)} aborted`;
    const cols = { input: [], stage: [], operator: [], output: [] };
    for (const n of p.nodes) (cols[n.kind] || cols.operator).push(n);
    const order = ["input", "stage", "operator", "output"];
    const heads = { input: "inputs", stage: "decode", operator: "operators", output: "outputs" };
    const rows = Math.max(...order.map((k) => cols[k].length), 1);
    const height = TOP + rows * (NODE_H + GAP_Y);
    const width = order.length * NODE_W + (order.length - 1) * COL_GAP;
    // Outputs in the order of the operators that write them, so that arrows cross as little as
    // possible; the dead letters, written from the decode stage and several operators, last.
    const rank = {};
    cols.operator.forEach((n, i) => { rank[n.id] = i; });
    const weight = (n) => {
      if (n.detail === "dead letters") return 1e9;
      const from = p.edges.filter((e) => e.to === n.id && rank[e.from] !== undefined).map((e) => rank[e.from]);
      return from.length ? from.reduce((a, b) => a + b, 0) / from.length : 1e8;
    };
    cols.output.sort((a, b) => weight(a) - weight(b));
    const pos = {};
    order.forEach((k, c) => {
      const list = cols[k];
      const colH = list.length * (NODE_H + GAP_Y) - GAP_Y;
      const y0 = TOP + (rows * (NODE_H + GAP_Y) - GAP_Y - colH) / 2;
      list.forEach((n, i) => { pos[n.id] = { x: c * (NODE_W + COL_GAP), y: y0 + i * (NODE_H + GAP_Y), n }; });
    });
    const svg = el("svg:svg", { viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: "xMidYMin meet", role: "img", "aria-label": "pipeline graph" });
    svg.style.maxHeight = (height * 1.25) + "px";
    order.forEach((k, c) => svg.append(el("svg:text", { class: "colhead", x: c * (NODE_W + COL_GAP) + 4, y: 12, text: heads[k] })));
    const maxRate = Math.max(1, ...p.edges.map((e) => e.rate));
    for (const e of p.edges) {
      const a = pos[e.from], b = pos[e.to];
      if (!a || !b) continue;
      const x1 = a.x + NODE_W, y1 = a.y + NODE_H / 2, x2 = b.x, y2 = b.y + NODE_H / 2, mx = (x1 + x2) / 2;
      const dlq = b.n.detail === "dead letters";
      const path = el("svg:path", { class: "edge" + (e.rate > 0 ? " live" : "") + (dlq ? " dlq" : ""), d: `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}` });
      path.style.strokeWidth = (1.4 + 3 * Math.log1p(e.rate) / Math.log1p(maxRate)).toFixed(2);
      svg.append(path);
    }
    for (const id in pos) {
      const { x, y, n } = pos[id];
      let cls = "node " + n.kind;
      if (n.detail === "dead letters") cls += " dlq";
      if (n.detail === "late records") cls += " late";
      const g = el("svg:g", { class: cls, transform: `translate(${x},${y})`, "data-id": n.id, "data-rate": n.rate, "data-total": n.total });
      g.append(el("svg:rect", { width: NODE_W, height: NODE_H, rx: 8 }));
      const title = n.label.length > 26 ? n.label.slice(0, 25) + "…" : n.label;
      g.append(el("svg:text", { class: "title", x: 12, y: 20, text: title }));
      let sub = n.detail;
      if (n.stores && n.stores.length) sub += " · state";
      g.append(el("svg:text", { class: "sub", x: 12, y: 36, text: sub }));
      const verb = n.kind === "input" ? "consumed" : n.kind === "stage" ? "decoded" : n.kind === "output" ? "produced" : "written";
      g.append(el("svg:text", { class: "rate", x: NODE_W - 12, y: 51, "text-anchor": "end", text: fmtRate(n.rate) }));
      g.append(el("svg:text", { class: "total", x: 12, y: 51, text: `${fmt(n.total)} ${verb}` }));
      g.append(el("svg:title", { text: `${n.label} (${n.detail}): ${fmtRate(n.rate)}, ${fmt(n.total)} ${verb} since start` }));
      svg.append(g);
    }
    $("#graph").replaceChildren(svg);
  }

  // ---- partitions ----
  function renderPartitions(w) {
    const tb = $("#partitions tbody");
    const rows = (w && w.partitions) || [];
    rows.sort((a, b) => a.topic.localeCompare(b.topic) || a.partition - b.partition);
    if (!rows.length) {
      tb.replaceChildren(el("tr", {}, el("td", { colspan: 7, class: "muted", text: "no partition assigned to this instance yet" })));
      return;
    }
    tb.replaceChildren(...rows.map((p) => {
      const lag = Math.max(0, p.last_stable_offset - p.next_offset);
      const state = p.idle ? el("span", { class: "tag idle", text: "idle" }) : p.watermark ? el("span", { class: "tag ok", text: "active" }) : el("span", { class: "tag wait", text: "no events" });
      return el("tr", { "data-partition": p.partition },
        el("td", { text: p.topic }), el("td", { class: "num", text: p.partition }),
        el("td", { class: "num", text: fmt(lag) }),
        el("td", { text: p.watermark ? p.watermark.replace("T", " ").replace(/\.\d+Z$|Z$/, "") : "–" }),
        el("td", { class: "num", text: p.watermark ? fmtAgo(p.watermark_lag_seconds) : "–" }),
        el("td", {}, state), el("td", { class: "why", text: p.why }));
    }));
  }

  // ---- model quality ----
  const COLORS = ["#2f6fde", "#e0802b", "#1f9d63", "#7a4fd6", "#d6453d", "#0f9bb0"];
  const MARK = { version: "rgba(107,115,133,.55)", promotion: "#7a4fd6", drift: "#d6453d" };
  const METRIC_NAMES = { auc: "AUC", logloss: "log loss", accuracy: "accuracy", mae: "MAE", rmse: "RMSE" };
  const charts = {}; // metric → {plot, box, key}
  let events = [];
  function marksPlugin() {
    return { hooks: { draw: [(u) => {
      const ctx = u.ctx, top = u.bbox.top, h = u.bbox.height;
      ctx.save();
      for (const e of events) {
        const x = Math.round(u.valToPos(e.time_ms / 1000, "x", true));
        if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) continue;
        ctx.strokeStyle = MARK[e.kind] || "#999";
        ctx.lineWidth = e.kind === "version" ? 1 : 2 * devicePixelRatio;
        ctx.setLineDash(e.kind === "version" ? [3 * devicePixelRatio, 3 * devicePixelRatio] : []);
        ctx.beginPath(); ctx.moveTo(x, top); ctx.lineTo(x, top + h); ctx.stroke();
      }
      ctx.restore();
    }] } };
  }
  function renderQuality(q) {
    events = q.events;
    const byMetric = {};
    for (const s of q.series) (byMetric[s.metric] = byMetric[s.metric] || []).push(s);
    const box = $("#charts");
    // The headline metrics get a chart; the rest (precision, recall, ...) are in the model table,
    // unless a model has none of the headline ones.
    const CHARTED = ["auc", "logloss", "accuracy", "mae", "rmse"];
    let metrics = Object.keys(byMetric).filter((m) => CHARTED.includes(m));
    if (!metrics.length) metrics = Object.keys(byMetric);
    metrics.sort((a, b) => order(a) - order(b) || a.localeCompare(b));
    function order(m) { const i = CHARTED.indexOf(m); return i < 0 ? 99 : i; }
    if (!metrics.length) {
      box.replaceChildren(el("div", { class: "chart" }, el("h3", { text: "waiting for labels" }),
        el("div", { class: "empty", text: "no labelled prediction yet: quality appears once labels arrive" })));
      for (const k in charts) delete charts[k];
    } else if (box.querySelector(".empty")) box.replaceChildren();
    const perRow = Math.max(1, Math.min(metrics.length || 1, Math.floor(box.clientWidth / 380)));
    box.style.gridTemplateColumns = `repeat(${perRow}, minmax(0, 1fr))`;
    const width = Math.max(300, Math.floor((box.clientWidth - 20 * (perRow - 1)) / perRow) - 2);
    for (const m of metrics) {
      const series = byMetric[m];
      const xsSet = new Set();
      for (const s of series) for (const p of s.points) xsSet.add(p[0]);
      const xs = [...xsSet].sort((a, b) => a - b);
      const idx = new Map(xs.map((x, i) => [x, i]));
      const data = [xs.map((x) => x / 1000)];
      let points = 0;
      for (const s of series) {
        const ys = new Array(xs.length).fill(null);
        for (const p of s.points) { ys[idx.get(p[0])] = p[1]; points++; }
        data.push(ys);
      }
      const key = series.map((s) => s.model).join("|");
      let c = charts[m];
      if (!c || c.key !== key || Math.abs(c.width - width) > 30) {
        if (c) { c.plot.destroy(); c.box.remove(); }
        const div = el("div", { class: "chart", "data-metric": m }, el("h3", { text: METRIC_NAMES[m] || m }));
        box.append(div);
        const opts = {
          width, height: 210,
          scales: { x: { time: true } },
          series: [{}, ...series.map((s, i) => ({ label: s.model, stroke: COLORS[i % COLORS.length], width: 2, spanGaps: true,
            points: { show: false }, value: (u, v) => v === null ? "–" : v.toFixed(4) }))],
          axes: [{ stroke: "#6b7385", grid: { stroke: "#eef1f6" }, space: 80, values: (u, vals) => vals.map((v) => clock(v * 1000)) },
                 { stroke: "#6b7385", grid: { stroke: "#eef1f6" }, size: 56, values: (u, vals) => vals.map((v) => +v.toFixed(3)) }],
          legend: { live: true },
          plugins: [marksPlugin()],
        };
        c = charts[m] = { plot: new uPlot(opts, data, div), box: div, key, width };
      } else {
        c.plot.setData(data);
      }
      c.box.dataset.points = points;
    }
    for (const m in charts) if (!metrics.includes(m)) { charts[m].plot.destroy(); charts[m].box.remove(); delete charts[m]; }

    const tb = $("#models tbody");
    tb.replaceChildren(...q.models.map((r) => el("tr", {},
      el("td", {}, r.name + " ", r.champion ? el("span", { class: "tag champion", text: "champion" }) : null),
      el("td", { text: r.kind }), el("td", { class: "num", text: r.version }), el("td", { class: "num", text: fmt(r.updates) }),
      el("td", { class: "num", text: fmt(r.predictions) }),
      el("td", { text: Object.keys(r.rolling).sort().map((k) => `${METRIC_NAMES[k] || k} ${r.rolling[k].toFixed(3)}`).join("  ·  ") || "–" }))));
    const list = q.events.slice(-12).reverse();
    $("#events").replaceChildren(...list.map((e) => el("li", {}, el("i", { class: "mark " + e.kind }), `${clock(e.time_ms)}  ${e.kind}: ${e.model ? e.model + ", " : ""}${e.detail}`)));
  }

  // ---- dead letters ----
  function renderDeadLetters(d) {
    const total = d.by_reason.reduce((a, r) => a + r.total, 0);
    $("#dlq-note").textContent = `${fmt(total)} since start` + (d.contents_shown ? "" : " · record contents hidden (admin.console.dead_letter_contents)");
    const max = Math.max(1, ...d.by_reason.map((r) => r.total));
    const seen = d.by_reason.filter((r) => r.total > 0), unseen = d.by_reason.filter((r) => r.total === 0);
    const none = unseen.length ? [el("div", { class: "row zero" }, el("span", { text: `${unseen.length} other reasons` }), el("span", { text: "0" }))] : [];
    $("#reasons").replaceChildren(...seen.map((r) => {
      const bar = el("i");
      bar.style.width = (100 * r.total / max).toFixed(1) + "%";
      return el("div", { class: "row" + (r.total ? "" : " zero"), "data-reason": r.reason },
        el("span", { text: r.reason }), el("span", { text: `${fmt(r.total)}  ${r.rate ? "(" + fmtRate(r.rate) + ")" : ""}` }),
        r.total ? el("div", { class: "bar" }, bar) : null);
    }), ...none);
    const tb = $("#deadletters tbody");
    if (!d.recent.length) {
      tb.replaceChildren(el("tr", {}, el("td", { colspan: 5, class: "muted", text: d.listed ? "no dead letter yet" : "not listed by this server" })));
      return;
    }
    tb.replaceChildren(...d.recent.slice(0, 15).map((r) => el("tr", {},
      el("td", { text: clock(r.time_ms) }), el("td", { text: `${r.topic}/${r.partition}@${r.offset}` }),
      el("td", {}, el("span", { class: "tag", text: r.reason }), r.field ? " " + r.field : "", r.operator ? " (" + r.operator + ")" : ""),
      el("td", { text: r.detail }),
      d.contents_shown ? el("td", { class: "rec", text: (r.key ? r.key + " → " : "") + (r.value || "") + (r.value_bytes > (r.value || "").length ? " …" : "") })
        : el("td", { class: "hidden-contents", text: `hidden (${fmt(r.value_bytes)} bytes)` }))));
  }

  // ---- restore ----
  function renderRestore(r) {
    const card = $("#restore-card");
    card.hidden = !r || r.restoring_partitions === 0;
    if (card.hidden) return;
    $("#restore-summary").textContent = `${r.restoring_partitions} partition(s) · ${fmt(r.restored_records)} records replayed (${fmtRate(r.restored_rate)})`;
    $("#restore").replaceChildren(...r.stores.map((s) => {
      const bar = el("i");
      bar.style.width = (100 * s.progress).toFixed(1) + "%";
      return el("div", { class: "progress" }, el("span", { text: `${s.store} · partition ${s.partition}` }),
        el("div", { class: "track" }, bar), el("span", { class: "muted", text: `${fmt(100 * s.progress, 0)}% · ${fmt(s.remaining_offsets)} left` }));
    }));
  }

  // ---- loop ----
  let timer = null;
  async function poll() {
    clearTimeout(timer);
    try {
      const [p, w, q, d, r, isReady] = await Promise.all([get("/v1/pipeline"), get("/v1/watermarks"), get("/v1/quality"),
        get("/v1/deadletters"), get("/v1/restore"), ready()]);
      renderGraph(p); renderPartitions(w); renderQuality(q); renderDeadLetters(d); renderRestore(r);
      const st = $("#state");
      st.className = "pill " + (isReady ? "ok" : r && r.restoring_partitions ? "warn" : "bad");
      st.textContent = isReady ? "processing" : r && r.restoring_partitions ? "restoring" : "not ready";
      $("#updated").textContent = "updated " + clock(Date.now());
      $("#logout").hidden = !sessionStorage.getItem(TOKEN_KEY);
      document.body.dataset.loaded = "true";
      timer = setTimeout(poll, POLL_MS);
    } catch (e) {
      if (e instanceof Unauthorized) {
        const st = $("#state");
        st.className = "pill warn"; st.textContent = "token needed";
        askToken(sessionStorage.getItem(TOKEN_KEY) ? "That token was refused." : "");
        sessionStorage.removeItem(TOKEN_KEY);
        return;
      }
      console.error("streamd console:", e);
      const st = $("#state");
      st.className = "pill bad"; st.textContent = "unreachable"; st.title = String(e && e.message || e);
      timer = setTimeout(poll, POLL_MS * 2);
    }
  }
  poll();
})();
