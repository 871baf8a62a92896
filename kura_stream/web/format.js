// Pure helpers of the web map, the same rules as the dashboard's tui/format.py.
"use strict";
window.KS = window.KS || {};

KS.HIDDEN_LABEL = "(small cluster, name hidden)"; // kura_stream/tree.py HIDDEN_LABEL
KS.MARK_MS = 10 * 60 * 1000; // new and renamed clusters are marked this long (the dashboard's 10 min)

KS.compact = function (n) {
  if (n < 1000) return String(n);
  if (n < 1e6) return (n / 1e3).toFixed(n < 1e4 ? 1 : 0) + "k";
  return (n / 1e6).toFixed(1) + "M";
};

KS.share = function (part, total) {
  return total > 0 ? ((100 * part) / total).toFixed(1) + "%" : "–";
};

// Members gained over the history window (last sample minus first), as the dashboard counts it.
KS.growth = function (history) {
  return history && history.length >= 2 ? history[history.length - 1] - history[0] : 0;
};

KS.displayName = function (c) {
  if (!c.visible) return KS.HIDDEN_LABEL;
  return c.name || "(unnamed)";
};

KS.relativeTime = function (iso, now) {
  if (!iso) return "never";
  const s = Math.max(0, (now - Date.parse(iso)) / 1000);
  if (s < 10) return "just now";
  if (s < 60) return Math.round(s) + "s ago";
  if (s < 3600) return Math.round(s / 60) + "m ago";
  if (s < 86400) return Math.round(s / 3600) + "h ago";
  return Math.round(s / 86400) + "d ago";
};

// The top of a cluster's parent chain (itself at the top), following parent_id.
KS.chain = function (c, byId) {
  const out = [c];
  const seen = new Set([c.id]);
  let p = c.parent_id && byId.get(c.parent_id);
  while (p && !seen.has(p.id)) {
    out.unshift(p);
    seen.add(p.id);
    p = p.parent_id && byId.get(p.parent_id);
  }
  return out; // root first, the cluster last
};

// Base cluster ids under a cluster (itself when it is a base cluster).
KS.baseUnder = function (id, clusters) {
  const kids = new Map();
  for (const c of clusters) {
    if (c.parent_id) (kids.get(c.parent_id) || kids.set(c.parent_id, []).get(c.parent_id)).push(c);
  }
  const out = new Set();
  const stack = [id];
  const byId = new Map(clusters.map((c) => [c.id, c]));
  while (stack.length) {
    const cur = stack.pop();
    const c = byId.get(cur);
    if (c && c.level === 0) out.add(cur);
    for (const k of kids.get(cur) || []) stack.push(k.id);
  }
  return out;
};

// "new" (born or first seen lately), "renamed" (name changed lately) or "".
KS.mark = function (c, marks, now) {
  const born = c.created_at ? Date.parse(c.created_at) : NaN;
  const seen = marks.firstSeen.get(c.id);
  if ((now - born <= KS.MARK_MS) || (seen !== undefined && now - seen <= KS.MARK_MS)) return "new";
  const renamed = marks.renamedAt.get(c.id);
  if (renamed !== undefined && now - renamed <= KS.MARK_MS) return "renamed";
  return "";
};

KS.el = function (tag, attrs, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
};
