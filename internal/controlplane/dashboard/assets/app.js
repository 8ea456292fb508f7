// Lucid dashboard: plain JavaScript and SVG, no framework. The server pushes the
// topology as server-sent events ("graph"); the workload page also streams the proxy's
// tap ("tap") and re-reads the workload on every graph update.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const $ = (id) => document.getElementById(id);
let graph = null;          // the newest Graph
let view = "";             // topology, workload, findings
let workloadName = "";     // the workload page's <workload>.<namespace>
let tapSource = null;      // EventSource of the workload page's tap
let events = null;         // EventSource of the graph

function el(tag, attrs, ...children) {
  const e = tag.startsWith("svg:") ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v !== undefined && v !== null) e.setAttribute(k, v);
  }
  for (const c of children) {
    if (c !== undefined && c !== null) e.append(c);
  }
  return e;
}

function fmtRate(r) { return r >= 10 ? r.toFixed(0) : r >= 1 ? r.toFixed(1) : r.toFixed(2); }
function fmtPct(s) { return (s * 100).toFixed(s >= 0.999 || s === 0 ? 0 : 1) + " %"; }
function fmtMs(ms) {
  if (ms === null || ms === undefined) return "–";
  return ms >= 1000 ? (ms / 1000).toFixed(1) + " s" : ms >= 10 ? ms.toFixed(0) + " ms" : ms.toFixed(1) + " ms";
}
function fill(tbody, rows) { tbody.replaceChildren(...rows); }
function row(cells, cls) {
  const tr = el("tr", cls ? { class: cls } : {});
  for (const c of cells) {
    const td = typeof c === "object" && c !== null && c.num !== undefined ? el("td", { class: "num" }, String(c.num)) : el("td", {}, c instanceof Node ? c : String(c ?? ""));
    tr.append(td);
  }
  return tr;
}

// ---- live connection ----------------------------------------------------------------
function connect() {
  if (events) events.close();
  events = new EventSource("api/events");
  events.addEventListener("graph", (e) => {
    setLive(true);
    graph = JSON.parse(e.data);
    if (view === "topology") renderTopology();
    if (view === "workload") loadWorkload();
  });
  events.onerror = () => {
    setLive(false);
    if (events.readyState === EventSource.CLOSED) setTimeout(connect, 2000);
  };
}
function setLive(on) {
  const l = $("live");
  l.className = "live " + (on ? "on" : "off");
  l.textContent = on ? "live" : "reconnecting to the control plane…";
}

// ---- routing -------------------------------------------------------------------------
function route() {
  const h = location.hash || "#/";
  for (const s of ["topology", "workload", "findings"]) $("view-" + s).hidden = true;
  for (const a of document.querySelectorAll("nav a")) a.removeAttribute("aria-current");
  if (tapSource && !h.startsWith("#/workload/" + encodeURIComponent(workloadName))) { tapSource.close(); tapSource = null; }
  if (h.startsWith("#/workload/")) {
    view = "workload";
    workloadName = decodeURIComponent(h.slice("#/workload/".length));
    $("view-workload").hidden = false;
    $("wl-title").textContent = workloadName;
    document.title = workloadName + " · Lucid";
    fill($("tap").tBodies[0], []);
    loadWorkload();
    startTap();
  } else if (h === "#/findings") {
    view = "findings";
    $("view-findings").hidden = false;
    $("nav-findings").setAttribute("aria-current", "page");
    document.title = "Findings · Lucid";
    loadFindings();
  } else {
    view = "topology";
    $("view-topology").hidden = false;
    $("nav-topology").setAttribute("aria-current", "page");
    document.title = "Topology · Lucid";
    renderTopology();
  }
}

// ---- topology ------------------------------------------------------------------------
const NODE_W = 170, NODE_H = 52, COL_GAP = 170, ROW_GAP = 56, PAD = 24;

// layout puts nodes in columns by their longest path from a source, orders each column
// by the mean position of its callers, and gives idle nodes the column of a node of the
// same app (or the last one).
function layout(g) {
  const out = new Map(), rank = new Map();
  for (const n of g.nodes) { out.set(n.id, []); rank.set(n.id, 0); }
  const linked = new Set();
  for (const e of g.edges) { out.get(e.from).push(e.to); linked.add(e.from); linked.add(e.to); }
  for (let i = 0; i < g.nodes.length; i++) {
    let changed = false;
    for (const e of g.edges) {
      if (e.from === e.to) continue;
      const r = rank.get(e.from) + 1;
      if (r > rank.get(e.to) && r < g.nodes.length) { rank.set(e.to, r); changed = true; }
    }
    if (!changed) break;
  }
  const app = (n) => (n.detail || "").split(" ")[0] || n.label;
  let maxRank = 0;
  for (const n of g.nodes) if (linked.has(n.id)) maxRank = Math.max(maxRank, rank.get(n.id));
  for (const n of g.nodes) {
    if (linked.has(n.id)) continue;
    const peer = g.nodes.find((m) => linked.has(m.id) && app(m) === app(n));
    rank.set(n.id, peer ? rank.get(peer.id) : (n.kind === "gateway" ? 0 : maxRank + (linked.size ? 1 : 0)));
  }
  const cols = [];
  for (const n of g.nodes) (cols[rank.get(n.id)] ||= []).push(n);
  const pos = new Map();
  const preds = (id) => g.edges.filter((e) => e.to === id && pos.has(e.from)).map((e) => pos.get(e.from).y);
  let height = 0;
  cols.forEach((col, c) => {
    if (!col) return;
    col.sort((a, b) => {
      const pa = preds(a.id), pb = preds(b.id);
      const ma = pa.length ? pa.reduce((x, y) => x + y) / pa.length : 1e9, mb = pb.length ? pb.reduce((x, y) => x + y) / pb.length : 1e9;
      return ma - mb || app(a).localeCompare(app(b)) || a.label.localeCompare(b.label);
    });
    col.forEach((n, i) => pos.set(n.id, { x: PAD + c * (NODE_W + COL_GAP), y: PAD + 14 + i * (NODE_H + ROW_GAP), col: c, row: i }));
    height = Math.max(height, PAD * 2 + 14 + col.length * (NODE_H + ROW_GAP));
  });
  return { pos, cols: cols.filter(Boolean).length ? cols : [], width: PAD * 2 + cols.length * (NODE_W + COL_GAP) - COL_GAP, height };
}

function renderTopology() {
  const box = $("graph");
  if (!graph) return;
  $("window").textContent = graph.window_s > 0 ? `(last ${Math.round(graph.window_s)} s)` : "(collecting…)";
  const g = graph;
  $("empty").hidden = g.edges.length > 0;
  const { pos, width, height } = layout(g);
  const failing = new Set(g.edges.filter((e) => e.health === "bad").map((e) => e.to));
  const svg = el("svg:svg", { width: Math.max(width, 300), height: Math.max(height, 120), viewBox: `0 0 ${Math.max(width, 300)} ${Math.max(height, 120)}`, role: "group", "aria-label": `Topology: ${g.nodes.length} nodes, ${g.edges.length} edges` });
  const defs = el("svg:defs");
  for (const h of ["ok", "warn", "bad"]) {
    const m = el("svg:marker", { id: "arrow-" + h, viewBox: "0 0 10 10", refX: "9", refY: "5", markerWidth: "12", markerHeight: "12", markerUnits: "userSpaceOnUse", orient: "auto-start-reverse" });
    m.append(el("svg:path", { d: "M 0 0 L 10 5 L 0 10 z", fill: getComputedStyle(document.documentElement).getPropertyValue("--" + h).trim() }));
    defs.append(m);
  }
  svg.append(defs);
  const edgeLayer = el("svg:g"), labelLayer = el("svg:g"), nodeLayer = el("svg:g");
  svg.append(edgeLayer, nodeLayer, labelLayer);
  const byId = new Map(g.nodes.map((n) => [n.id, n]));
  const name = (id) => { const n = byId.get(id) || { label: id }; return n.label + (detail(n) ? " (" + detail(n) + ")" : ""); };
  for (const e of g.edges) {
    const a = pos.get(e.from), b = pos.get(e.to);
    if (!a || !b) continue;
    const x1 = a.x + NODE_W, y1 = a.y + NODE_H / 2, x2 = b.x - 2, y2 = b.y + NODE_H / 2;
    const mx = (x1 + x2) / 2;
    const ge = el("svg:g", { class: "edge " + e.health, "data-from": e.from, "data-to": e.to, "data-rps": e.rps.toFixed(3), "data-health": e.health });
    const title = el("svg:title");
    title.textContent = `${name(e.from)} → ${name(e.to)}: ${fmtRate(e.rps)} req/s, ${fmtPct(e.success)} success, p99 ${fmtMs(e.p99_ms)}` + (e.cause ? `. Errors: ${e.cause}` : "") + (e.detail ? `. ${e.detail}` : "");
    ge.append(title, el("svg:path", { d: `M ${x1} ${y1} C ${mx} ${y1}, ${mx} ${y2}, ${x2} ${y2}`, "marker-end": `url(#arrow-${e.health})` }));
    edgeLayer.append(ge);
    const lx = mx, ly = (y1 + y2) / 2;
    const lg = el("svg:g", { class: "edge " + e.health });
    const t1 = el("svg:text", { x: lx, y: ly - 7, "text-anchor": "middle" });
    t1.textContent = `${fmtRate(e.rps)}/s · ${fmtPct(e.success)} · p99 ${fmtMs(e.p99_ms)}`;
    lg.append(t1);
    if (e.cause) {
      const t2 = el("svg:text", { x: lx, y: ly + 17, "text-anchor": "middle", class: "cause" });
      t2.textContent = e.cause;
      lg.append(t2);
    }
    labelLayer.append(lg);
  }
  for (const n of g.nodes) {
    const p = pos.get(n.id);
    const cls = ["node", n.kind, failing.has(n.id) ? "failing" : "", g.edges.some((e) => e.from === n.id || e.to === n.id) ? "" : "idle"].join(" ").trim();
    const idle = !g.edges.some((e) => e.from === n.id || e.to === n.id);
    const label = `${n.kind} ${n.label}${detail(n) ? ", " + detail(n) : ""}${idle ? ", no traffic" : ""}${n.page ? ". Press Enter to open." : ""}`;
    const gn = el("svg:g", { class: cls, transform: `translate(${p.x},${p.y})`, tabindex: "0", role: n.page ? "link" : "img", "aria-label": label, "data-id": n.id, "data-col": p.col, "data-row": p.row });
    const title = el("svg:title");
    title.textContent = label;
    gn.append(title, el("svg:rect", { width: NODE_W, height: NODE_H, rx: n.kind === "gateway" ? 14 : 6 }));
    const kind = el("svg:text", { x: 10, y: 14, class: "kind" });
    kind.textContent = n.kind.toUpperCase() + (n.connected || !n.page ? "" : " · DISCONNECTED");
    const nm = el("svg:text", { x: 10, y: 31, class: "name" });
    nm.textContent = n.label.length > 21 ? n.label.slice(0, 20) + "…" : n.label;
    const dt = el("svg:text", { x: 10, y: 46 });
    dt.textContent = (detail(n) || "") + (idle ? (detail(n) ? " · " : "") + "no traffic" : "");
    gn.append(kind, nm, dt);
    if (n.page) {
      const go = () => { location.hash = "#/workload/" + encodeURIComponent(n.page); };
      gn.addEventListener("click", go);
      gn.addEventListener("keydown", (ev) => { if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); go(); } });
    }
    gn.addEventListener("keydown", (ev) => moveFocus(ev, p));
    nodeLayer.append(gn);
  }
  const focused = document.activeElement && document.activeElement.getAttribute && document.activeElement.getAttribute("data-id");
  box.replaceChildren(svg);
  box.dataset.time = g.time;
  // Label backgrounds, sized to the rendered text (so measured once in the document).
  for (const lg of labelLayer.children) {
    for (const t of [...lg.children]) {
      const bb = t.getBBox();
      lg.insertBefore(el("svg:rect", { class: "bg", x: bb.x - 3, y: bb.y - 1, width: bb.width + 6, height: bb.height + 2, rx: 3 }), t);
    }
  }
  if (focused) svg.querySelector(`[data-id="${CSS.escape(focused)}"]`)?.focus();
  fill($("edges").tBodies[0], g.edges.map((e) => row([name(e.from), name(e.to), { num: fmtRate(e.rps) }, { num: fmtPct(e.success) }, { num: fmtMs(e.p99_ms) }, e.cause ? e.cause + (e.detail ? " — " + e.detail : "") : ""], e.health === "bad" ? "bad" : "")));
}

// detail is a node's second line when it adds to the name: "reviews v1", "subset v3".
function detail(n) { return n.detail && n.detail !== n.label ? n.detail : ""; }

// moveFocus: arrow keys move between nodes (up/down in a column, left/right across).
function moveFocus(ev, p) {
  const d = { ArrowUp: [0, -1], ArrowDown: [0, 1], ArrowLeft: [-1, 0], ArrowRight: [1, 0] }[ev.key];
  if (!d) return;
  ev.preventDefault();
  const nodes = [...document.querySelectorAll("#graph .node")];
  const at = (n) => [Number(n.dataset.col), Number(n.dataset.row)];
  let best = null, bestD = Infinity;
  for (const n of nodes) {
    const [c, r] = at(n);
    if (d[0] && c !== p.col + d[0]) continue;
    if (d[1] && (c !== p.col || r !== p.row + d[1])) continue;
    const dist = Math.abs(r - p.row);
    if (dist < bestD) { best = n; bestD = dist; }
  }
  best?.focus();
}

// ---- workload page -----------------------------------------------------------------
let loading = false;
async function loadWorkload() {
  if (loading) return;
  loading = true;
  try {
    const name = workloadName;
    const r = await fetch("api/workload?name=" + encodeURIComponent(name));
    if (name !== workloadName || view !== "workload") return;
    if (!r.ok) { $("wl-summary").textContent = await r.text(); return; }
    renderWorkload(await r.json());
  } catch (e) {
    $("wl-summary").textContent = "cannot reach the control plane: " + e;
  } finally {
    loading = false;
  }
}

function renderWorkload(w) {
  const labels = Object.entries(w.labels || {}).map(([k, v]) => k + "=" + v).join(", ");
  $("wl-summary").textContent = `${w.kind} · ${w.ip} · admin ${w.admin} · ${w.connected ? "connected" : "disconnected"}${labels ? " · " + labels : ""}`;
  const s = w.series || [];
  chart($("chart-rate"), [
    { name: "served", values: s.map((p) => p.in_rps) },
    { name: "sent", values: s.map((p) => p.out_rps), dash: "6 3" },
  ], s, "/s");
  const flags = [...new Set(s.flatMap((p) => Object.keys(p.errors || {})))].sort();
  chart($("chart-errors"), flags.length ? flags.map((f, i) => ({ name: f, values: s.map((p) => (p.errors || {})[f] || 0), dash: i ? "4 2" : "" })) : [{ name: "none", values: s.map(() => 0) }], s, "/s");
  chart($("chart-latency"), [
    { name: "p50", values: s.map((p) => p.p50) },
    { name: "p90", values: s.map((p) => p.p90), dash: "6 3" },
    { name: "p99", values: s.map((p) => p.p99), dash: "2 2" },
  ], s, " ms");
  fill($("wl-sync").tBodies[0], ["LDS", "RDS", "CDS", "EDS"].map((t) => {
    const st = (w.sync || {})[t] || { state: "NOT SENT" };
    return row([t, st.state + (st.nack_reason ? ": " + st.nack_reason : ""), st.version || ""], st.state === "ERROR" ? "bad" : "");
  }));
  const ready = $("wl-ready");
  ready.textContent = w.ready;
  ready.className = w.ready_ok ? "ok-text" : "error";
  fill($("wl-probes").tBodies[0], w.probes.length ? w.probes.map((p) => row([p.probe, p.result + (p.reason ? " (" + p.reason + ")" : ""), { num: p.count }], p.result === "failure" ? "bad" : "")) : [row(["no app probes (they exist on Kubernetes, where the pod declares them)"])]);
  $("wl-cert").textContent = w.certificate;
  const ce = $("wl-config-error");
  ce.hidden = !w.config_error;
  ce.textContent = w.config_error || "";
  const c = w.config || { listeners: [], routes: [], clusters: [], endpoints: [] };
  fill($("cfg-listeners").tBodies[0], c.listeners.map((l) => row([l.name, l.address, { num: l.chains }])));
  fill($("cfg-routes").tBodies[0], c.routes.map((r) => row([r.route_config, r.virtual_host, (r.domains || []).join(", "), r.match, r.destination])));
  fill($("cfg-clusters").tBodies[0], c.clusters.map((x) => row([x.name, x.type])));
  fill($("cfg-endpoints").tBodies[0], c.endpoints.map((x) => row([x.cluster, x.address, x.health], x.health === "HEALTHY" ? "" : "bad")));
}

// chart draws lines over the points' times; null values leave gaps.
function chart(box, lines, points, unit) {
  const W = 480, H = 150, L = 44, B = 18, T = 8;
  const all = lines.flatMap((l) => l.values).filter((v) => v !== null && v !== undefined);
  const maxV = Math.max(unit === "/s" ? 1 : 0.1, ...all);
  const top = niceMax(maxV);
  const svg = el("svg:svg", { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none", role: "img" });
  const n = Math.max(points.length, 2);
  const x = (i) => L + (i / (n - 1)) * (W - L - 4);
  const y = (v) => T + (1 - v / top) * (H - T - B);
  svg.append(el("svg:line", { x1: L, y1: y(0), x2: W, y2: y(0), class: "axis" }), el("svg:line", { x1: L, y1: T, x2: L, y2: y(0), class: "axis" }));
  const tmax = el("svg:text", { x: L - 4, y: T + 9, "text-anchor": "end" });
  tmax.textContent = fmtAxis(top);
  const tmin = el("svg:text", { x: L - 4, y: y(0), "text-anchor": "end" });
  tmin.textContent = "0";
  svg.append(tmax, tmin);
  if (points.length) {
    const t0 = el("svg:text", { x: L, y: H - 4 });
    t0.textContent = new Date(points[0].t).toLocaleTimeString();
    const t1 = el("svg:text", { x: W - 4, y: H - 4, "text-anchor": "end" });
    t1.textContent = new Date(points[points.length - 1].t).toLocaleTimeString();
    svg.append(t0, t1);
  }
  const colours = ["#0550ae", "#cf222e", "#8250df", "#1a7f37", "#9a6700", "#57606a"];
  const desc = [];
  lines.forEach((l, i) => {
    let d = "", pen = false;
    l.values.forEach((v, j) => {
      if (v === null || v === undefined) { pen = false; return; }
      d += (pen ? " L " : " M ") + x(j).toFixed(1) + " " + y(v).toFixed(1);
      pen = true;
    });
    if (d) svg.append(el("svg:path", { d, fill: "none", stroke: colours[i % colours.length], "stroke-width": 2, "stroke-dasharray": l.dash || null, "vector-effect": "non-scaling-stroke" }));
    const last = [...l.values].reverse().find((v) => v !== null && v !== undefined);
    desc.push(`${l.name}: ${last === undefined ? "–" : fmtAxis(last) + unit}`);
  });
  svg.setAttribute("aria-label", "Now " + desc.join(", "));
  const legend = el("div", {});
  lines.forEach((l, i) => {
    const s = el("span", { class: "legend-item" });
    s.append(el("span", { class: "sw" }), ` ${desc[i]}`);
    s.firstChild.style.background = colours[i % colours.length];
    legend.append(s);
  });
  box.replaceChildren(svg, legend);
}
function niceMax(v) {
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}
function fmtAxis(v) { return v >= 100 ? v.toFixed(0) : v >= 1 ? v.toFixed(1) : v.toPrecision(2); }

// The workload's live requests: newest first, the last 50.
function startTap() {
  if (tapSource) tapSource.close();
  const name = workloadName;
  tapSource = new EventSource("api/tap?workload=" + encodeURIComponent(name));
  $("tap-state").textContent = "(connecting…)";
  tapSource.onopen = () => { $("tap-state").textContent = "(live, up to 20 a second)"; };
  tapSource.addEventListener("tap", (e) => {
    const ev = JSON.parse(e.data);
    const tb = $("tap").tBodies[0];
    const bad = (ev.protocol && (ev.status >= 500 || ev.status === 0)) || (ev.flags && ev.flags !== "-");
    tb.prepend(row([new Date(ev.time).toLocaleTimeString(), ev.direction, ev.method || "", ev.authority || "", ev.path || "", { num: ev.status }, ev.flags, { num: fmtMs(ev.duration_ms) }, ev.upstream_host || ev.upstream_cluster || "", ev.error || ""], bad ? "bad" : ""));
    while (tb.rows.length > 50) tb.deleteRow(-1);
  });
  tapSource.addEventListener("tap-error", (e) => { $("tap-state").textContent = "(" + JSON.parse(e.data) + ")"; });
  tapSource.onerror = () => { $("tap-state").textContent = "(reconnecting…)"; };
}

// ---- findings -------------------------------------------------------------------------
async function loadFindings() {
  try {
    const r = await fetch("api/findings");
    const list = r.ok ? await r.json() : [];
    $("findings-none").hidden = list.length > 0;
    fill($("findings").tBodies[0], list.map((m) => {
      const obj = m.kind ? `${m.kind} ${m.name}.${m.namespace}` : "";
      let objCell = obj;
      if (m.kind === "WorkloadEntry" && graph && graph.nodes.some((n) => n.page === `${m.name}.${m.namespace}`)) {
        objCell = el("a", { href: "#/workload/" + encodeURIComponent(`${m.name}.${m.namespace}`) }, obj);
      }
      const where = m.file ? `${m.file}${m.line ? ":" + m.line : ""}${m.field ? " (" + m.field + ")" : ""}` : "";
      const msg = el("div", {}, m.message);
      if (m.detail) msg.append(el("div", { class: "summary" }, m.detail));
      if (m.fix) msg.append(el("div", {}, "Fix: " + m.fix));
      return row([m.level, m.code, objCell, where, msg], m.level === "Error" ? "bad" : "");
    }));
  } catch (e) {
    $("findings-none").hidden = false;
    $("findings-none").textContent = "cannot reach the control plane: " + e;
  }
}

window.addEventListener("hashchange", route);
route();
connect();
setInterval(() => { if (view === "findings") loadFindings(); }, 10000);
