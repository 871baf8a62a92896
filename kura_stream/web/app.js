// The live web map: polls the service's read API (the dashboard's endpoints) every few seconds.
"use strict";

const POLL_MS = Number(new URLSearchParams(location.search).get("poll_ms")) || 3000;
const SAMPLE = 8;
const ACTIVE = new Set(["queued", "running"]);

const state = {
  status: null,
  clusters: [],
  byId: new Map(),
  selected: null,
  detail: null,
  expanded: new Set(),
  colours: new Map(),
  marks: { firstSeen: new Map(), renamedAt: new Map() },
  names: new Map(),
  loaded: false,
  recompute: null,
  reveal: false,
};
const $ = (id) => document.getElementById(id);
const palette = d3.schemeTableau10.concat(d3.schemeSet2);

async function getJSON(path, init) {
  const response = await fetch(path, { cache: "no-store", ...init });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const err = new Error(body.error || `${response.status} ${response.statusText}`);
    err.status = response.status;
    throw err;
  }
  return body;
}

// Colour by top-level parent; a top-level cluster keeps its colour across refreshes.
function colour(c) {
  const top = KS.chain(c, state.byId)[0];
  if (top.level === 0) return "#8d99ae"; // not under any parent (yet): no top-level colour
  if (!state.colours.has(top.id)) state.colours.set(top.id, palette[state.colours.size % palette.length]);
  return state.colours.get(top.id);
}

function noteChanges(clusters) {
  const now = Date.now();
  for (const c of clusters) {
    if (state.loaded && !state.names.has(c.id)) state.marks.firstSeen.set(c.id, now);
    const before = state.names.get(c.id);
    if (before && c.visible && c.name && before !== c.name) state.marks.renamedAt.set(c.id, now);
    if (c.visible && c.name) state.names.set(c.id, c.name);
    else if (!state.names.has(c.id)) state.names.set(c.id, "");
  }
}

function ctx() {
  const now = Date.now();
  const total = state.clusters.filter((c) => c.level === 0).reduce((s, c) => s + c.count, 0);
  const highlight = state.selected ? KS.baseUnder(state.selected, state.clusters) : new Set();
  return {
    selected: state.selected,
    highlight,
    total,
    byId: state.byId,
    expanded: state.expanded,
    reveal: state.reveal,
    colour,
    mark: (c) => KS.mark(c, state.marks, now),
    onSelect: select,
    onToggle: (id) => {
      state.expanded.has(id) ? state.expanded.delete(id) : state.expanded.add(id);
      draw();
    },
  };
}

function draw() {
  const context = ctx();
  mapView.render(state.clusters, context);
  KS.renderTree($("tree"), state.clusters, context);
  state.reveal = false;
  const base = state.clusters.filter((c) => c.level === 0).length;
  $("totals").textContent = `${base} clusters · ${state.clusters.length - base} above them`;
  if (state.detail) KS.renderDetail($("detail"), state.detail, state.byId.get(state.selected), context);
}

function drawHealth() {
  const s = state.status;
  const dl = $("pipeline");
  const item = (label, value, bad) => {
    const d = KS.el("div");
    d.append(KS.el("dt", {}, label), KS.el("dd", bad ? { class: "bad" } : {}, value));
    return d;
  };
  dl.replaceChildren(
    item("conversations", KS.compact(s.conversations)),
    item("outliers", KS.compact(s.outliers)),
    item("throughput", `${s.throughput_per_s.toFixed(1)}/s`),
    item("lag", KS.compact(s.lag), s.lag > 1000),
    item("DLQ", KS.compact(s.dlq), s.dlq > 0),
    item("last recompute", s.recompute_running ? "running…" : KS.relativeTime(s.last_recompute_at, Date.now())),
    item("broker", s.broker_ok ? "ok" : "DOWN", !s.broker_ok),
    item("store", s.store_ok ? "ok" : "DOWN", !s.store_ok),
    item("LLM", s.llm_ok ? "ok" : "DOWN", !s.llm_ok),
  );
  const rc = state.recompute;
  const busy = s.recompute_running || (rc && ACTIVE.has(rc.state));
  $("recompute").disabled = !!busy;
  if (rc) {
    let text = `recompute ${rc.request_id.slice(0, 8)}: ${rc.state}`;
    if (rc.state === "completed" && rc.clusters_after != null) text += `, ${rc.clusters_before} → ${rc.clusters_after} clusters`;
    if (rc.state === "failed") text += ` ${rc.detail}`;
    $("recompute-state").textContent = text;
  }
}

function setLive(ok, message) {
  const pill = $("live");
  pill.className = "pill " + (ok ? "live" : "down");
  pill.textContent = ok ? "● live" : `✕ disconnected: ${message}`;
  document.body.dataset.polls = String(Number(document.body.dataset.polls || 0) + 1);
}

async function refresh() {
  try {
    const [status, clusters] = await Promise.all([getJSON("/status"), getJSON("/clusters")]);
    if (state.recompute && ACTIVE.has(state.recompute.state)) {
      state.recompute = await getJSON(`/recompute/${encodeURIComponent(state.recompute.request_id)}`).catch(() => state.recompute);
    }
    noteChanges(clusters);
    state.loaded = true;
    state.status = status;
    state.clusters = clusters;
    state.byId = new Map(clusters.map((c) => [c.id, c]));
    await loadDetail();
    drawHealth();
    draw();
    setLive(true);
  } catch (err) {
    setLive(false, err.message);
  }
}

async function loadDetail() {
  if (!state.selected) return;
  try {
    state.detail = await getJSON(`/clusters/${encodeURIComponent(state.selected)}?sample=${SAMPLE}`);
  } catch (err) {
    if (err.status !== 404) throw err;
    // Merged away by a recompute: say so instead of showing stale details.
    state.selected = null;
    state.detail = null;
    $("detail").replaceChildren(KS.el("p", { class: "hint" }, "That cluster is gone (merged or split by a recompute)."));
  }
}

async function select(id) {
  state.selected = id;
  state.detail = null;
  state.reveal = true;
  const c = state.byId.get(id);
  if (c) for (const a of KS.chain(c, state.byId).slice(0, -1)) state.expanded.add(a.id);
  $("detail").replaceChildren(KS.el("p", { class: "hint" }, "Loading…"));
  draw();
  try {
    await loadDetail();
    draw();
  } catch (err) {
    $("detail").replaceChildren(KS.el("p", { class: "hint" }, `Could not load the cluster: ${err.message}`));
  }
}

async function requestRecompute() {
  $("recompute").disabled = true;
  try {
    state.recompute = await getJSON("/recompute", { method: "POST" });
  } catch (err) {
    $("recompute-state").textContent = `recompute refused: ${err.message}`;
  }
  if (state.status) drawHealth();
}

async function poll() {
  await refresh();
  setTimeout(poll, POLL_MS);
}

let mapView;
if (typeof d3 === "undefined") {
  const problem = $("problem");
  problem.textContent = "The map's library (d3) is not installed: run scripts/web_deps.sh, then reload.";
  problem.hidden = false;
} else {
  mapView = new KS.MapView($("map"), $("tooltip"), $("map-note"), select);
  $("recompute").addEventListener("click", requestRecompute);
  let resize;
  window.addEventListener("resize", () => {
    clearTimeout(resize);
    resize = setTimeout(() => state.loaded && draw(), 150);
  });
  poll();
}
