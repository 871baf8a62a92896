// The hierarchy tree (collapsible, counts and shares) and the selected cluster's details.
"use strict";
window.KS = window.KS || {};

KS.renderTree = function (ul, clusters, ctx) {
  const byId = new Map(clusters.map((c) => [c.id, c]));
  const kids = new Map();
  const roots = [];
  for (const c of clusters) {
    if (c.parent_id && byId.has(c.parent_id)) {
      if (!kids.has(c.parent_id)) kids.set(c.parent_id, []);
      kids.get(c.parent_id).push(c);
    } else roots.push(c);
  }
  const order = (a, b) => b.count - a.count || (a.id < b.id ? -1 : 1);
  const item = (c) => {
    const li = KS.el("li", { "data-cluster-id": c.id, role: "treeitem" });
    // Nothing is listed under a hidden cluster, as in the dashboard.
    const children = c.visible ? (kids.get(c.id) || []).sort(order) : [];
    const open = ctx.expanded.has(c.id);
    const row = KS.el("div", { class: "row" + (c.id === ctx.selected ? " selected" : "") });
    const toggle = KS.el("span", { class: "toggle" }, children.length ? (open ? "▾" : "▸") : "");
    toggle.addEventListener("click", (e) => {
      e.stopPropagation();
      if (children.length) ctx.onToggle(c.id);
    });
    const swatch = KS.el("span", { class: "swatch" });
    swatch.style.background = ctx.colour(c);
    const name = KS.el("span", { class: "name" + (c.visible ? "" : " hidden-name") }, KS.displayName(c));
    const num = KS.el("span", { class: "num" }, `${c.count.toLocaleString()} · ${KS.share(c.count, ctx.total)}`);
    row.append(toggle, swatch, name);
    const mark = ctx.mark(c);
    if (mark) row.append(KS.el("span", { class: "mark " + mark }, mark));
    row.append(num);
    row.addEventListener("click", () => ctx.onSelect(c.id));
    li.append(row);
    if (open && children.length) {
      const sub = KS.el("ul", { role: "group" });
      for (const k of children) sub.append(item(k));
      li.append(sub);
    }
    return li;
  };
  ul.replaceChildren(...roots.sort(order).map(item));
  const sel = ul.querySelector(".row.selected");
  if (sel && ctx.reveal) sel.scrollIntoView({ block: "nearest" });
};

KS.sparkline = function (history) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("class", "spark");
  svg.setAttribute("width", "220");
  svg.setAttribute("height", "40");
  if (history.length >= 2) {
    const x = d3.scaleLinear().domain([0, history.length - 1]).range([2, 218]);
    const y = d3.scaleLinear().domain(d3.extent(history)).range([37, 3]);
    if (y.domain()[0] === y.domain()[1]) y.domain([y.domain()[0] - 1, y.domain()[0] + 1]);
    const path = document.createElementNS(ns, "path");
    path.setAttribute("d", d3.line((v, i) => x(i), (v) => y(v))(history));
    svg.append(path);
    return svg;
  }
  return KS.el("div", { class: "hint" }, "(sampled every 10 s: not enough history yet)");
};

// detail: the ClusterDetail answer; view: the cluster as /clusters lists it (with its history).
KS.renderDetail = function (box, detail, view, ctx) {
  const c = view || detail.cluster;
  const link = (id) => {
    const other = ctx.byId.get(id);
    const a = KS.el("a", { "data-cluster-id": id }, other ? KS.displayName(other) : id);
    a.addEventListener("click", () => ctx.onSelect(id));
    return a;
  };
  const parts = [];
  const chain = KS.chain(c, ctx.byId);
  if (chain.length > 1) {
    const p = KS.el("div", { class: "chain" });
    chain.slice(0, -1).forEach((a, i) => {
      if (i) p.append(" › ");
      p.append(link(a.id));
    });
    parts.push(p);
  }
  const h = KS.el("h3", { class: c.visible ? "" : "hidden-name" });
  h.append(KS.el("span", { class: "title" }, KS.displayName(c)));
  const mark = ctx.mark(c);
  if (mark) h.append(KS.el("span", { class: "mark " + mark }, mark));
  parts.push(h);
  if (c.visible && c.description) parts.push(KS.el("p", { class: "description" }, c.description));
  const facts = KS.el("div", { class: "facts" });
  facts.append(
    KS.el("span", {}, `${c.count.toLocaleString()} conversations`),
    KS.el("span", {}, KS.share(c.count, ctx.total)),
    KS.el("span", {}, `+${KS.growth(c.history).toLocaleString()} recently`),
    KS.el("span", {}, c.level === 0 ? "base cluster" : `level ${c.level}`),
  );
  if (c.named_by) facts.append(KS.el("span", {}, `named by ${c.named_by}`));
  parts.push(facts, KS.el("div", { class: "muted" }, "count over time"), KS.sparkline(c.history || []));
  if (detail.children.length) {
    const kids = KS.el("div", { class: "children" }, "Children: ");
    detail.children.forEach((id, i) => {
      if (i) kids.append(", ");
      kids.append(link(id));
    });
    parts.push(kids);
  }
  if (!c.visible) {
    parts.push(KS.el("p", { class: "hint" }, "Below the minimum size shown: its name, description and summaries stay hidden."));
  } else {
    parts.push(KS.el("h4", {}, `Sample of scrubbed summaries (${detail.sample.length})`));
    const ul = KS.el("ul", { class: "samples", id: "samples" });
    for (const s of detail.sample) ul.append(KS.el("li", { class: "summary" }, s.summary));
    parts.push(ul);
  }
  box.replaceChildren(...parts);
  box.dataset.clusterId = c.id;
};
