// The 2-D map: base clusters as bubbles (area by count, colour by top-level parent), d3 zoom.
"use strict";
window.KS = window.KS || {};

KS.MapView = class {
  constructor(svg, tooltip, note, onSelect) {
    this.svgEl = svg;
    this.svg = d3.select(svg);
    this.tooltip = tooltip;
    this.note = note;
    this.onSelect = onSelect;
    this.k = 1;
    this.root = this.svg.append("g");
    this.bandLabel = this.root.append("text").attr("class", "band-label");
    this.bubbles = this.root.append("g");
    this.zoom = d3
      .zoom()
      .scaleExtent([0.5, 24])
      .on("zoom", (event) => {
        this.k = event.transform.k;
        this.root.attr("transform", event.transform);
        this.restyle();
      });
    this.svg.call(this.zoom).on("dblclick.zoom", null);
  }

  // Positions in pixels: placed clusters by their map x/y; those born since the last recompute
  // (x = y = 0 until a recompute places them) in a grid band along the bottom.
  layout(base) {
    const W = this.svgEl.clientWidth || 800;
    const H = this.svgEl.clientHeight || 600;
    const pad = 40;
    const placed = base.filter((c) => c.x !== 0 || c.y !== 0);
    const pending = base.filter((c) => c.x === 0 && c.y === 0);
    const bandH = pending.length ? (placed.length ? Math.min(140, H * 0.25) : H - 2 * pad) : 0;
    const top = d3.max(base, (c) => c.count) || 1;
    const r = d3.scaleSqrt().domain([0, top]).range([0, Math.max(14, Math.min(W, H) / 11)]);
    const inner = pad + r(top) * 0.7; // the largest bubbles stay inside the panel
    const extent = (values) => {
      const [lo, hi] = d3.extent(values);
      return lo === hi ? [lo - 1, hi + 1] : [lo, hi];
    };
    const x = d3.scaleLinear().domain(extent(placed.map((c) => c.x))).range([inner, W - inner]);
    const y = d3.scaleLinear().domain(extent(placed.map((c) => c.y))).range([H - inner - bandH, inner]);
    const nodes = placed.map((c) => ({ c, px: x(c.x), py: y(c.y), r: Math.max(3, r(c.count)) }));
    const ordered = pending.slice().sort((a, b) => b.count - a.count || (a.id < b.id ? -1 : 1));
    const bandTop = H - pad - bandH + (placed.length ? 24 : 0);
    const bandW = W - 2 * pad;
    const rows = Math.max(1, Math.round(Math.sqrt((ordered.length * (H - bandTop - pad / 2)) / bandW)));
    const cols = Math.max(1, Math.ceil(ordered.length / rows));
    ordered.forEach((c, i) => {
      const px = pad + ((i % cols) + 0.5) * (bandW / cols);
      const py = bandTop + (Math.floor(i / cols) + 0.5) * ((H - bandTop - pad / 2) / rows);
      nodes.push({ c, px, py, r: Math.max(3, Math.min(r(c.count), bandW / cols / 2)), pending: true });
    });
    this.bandLabel
      .attr("x", pad)
      .attr("y", bandTop - 6)
      .text(pending.length && placed.length ? "New since the last recompute (placed on the map at the next one)" : "");
    return nodes.sort((a, b) => b.c.count - a.c.count || (a.c.id < b.c.id ? -1 : 1));
  }

  // ctx: selected id, highlight (Set of base ids), colour(cluster), mark(cluster), total.
  render(clusters, ctx) {
    this.ctx = ctx;
    const base = clusters.filter((c) => c.level === 0);
    const nodes = this.layout(base);
    const g = this.bubbles
      .selectAll("g.bubble")
      .data(nodes, (d) => d.c.id)
      .join((enter) => {
        const e = enter.append("g").attr("class", "bubble");
        e.append("circle").attr("vector-effect", "non-scaling-stroke");
        e.append("text").attr("dy", "0.35em");
        e.on("click", (event, d) => {
          event.stopPropagation();
          this.onSelect(d.c.id);
        });
        e.on("mouseenter mousemove", (event, d) => this.showTip(event, d));
        e.on("mouseleave", () => {
          this.tooltip.hidden = true;
          this.hover = null;
        });
        return e;
      });
    g.attr("data-cluster-id", (d) => d.c.id)
      .attr("data-count", (d) => d.c.count)
      .attr("data-name", (d) => (d.c.visible ? d.c.name : ""))
      .attr("transform", (d) => `translate(${d.px},${d.py})`)
      .classed("pending", (d) => !!d.pending)
      .classed("new", (d) => ctx.mark(d.c) === "new")
      .classed("renamed", (d) => ctx.mark(d.c) === "renamed")
      .classed("selected", (d) => d.c.id === ctx.selected)
      .classed("in-selection", (d) => ctx.highlight.has(d.c.id));
    g.select("circle").attr("r", (d) => d.r).attr("fill", (d) => ctx.colour(d.c));
    g.select("text"); // hands the new data down to the label (restyle reads it)
    if (this.hover) {
      const d = nodes.find((n) => n.c.id === this.hover.id);
      d ? this.showTip(this.hover.event, d) : (this.tooltip.hidden = true);
    }
    g.order();
    this.svg.classed("has-selection", ctx.highlight.size > 0);
    const hidden = base.filter((c) => !c.visible).length;
    this.note.textContent =
      `${base.length} clusters on the map` + (hidden ? ` · ${hidden} below the minimum size shown, names hidden` : "") +
      " · scroll to zoom, drag to pan";
    this.restyle();
  }

  // Labels keep their size on screen while zooming; one shows once its bubble is big enough.
  restyle() {
    const k = this.k;
    this.bubbles
      .selectAll("g.bubble text")
      .style("font-size", `${11 / k}px`)
      .style("stroke-width", `${3 / k}px`)
      .text((d) => {
        if (!d.c.visible || !d.c.name || d.r * k < 18) return "";
        const max = Math.max(6, Math.floor((d.r * k * 2.6) / 6.5));
        return d.c.name.length > max ? d.c.name.slice(0, max - 1) + "…" : d.c.name;
      });
    this.bandLabel.style("font-size", `${12 / k}px`);
  }

  showTip(event, d) {
    this.hover = { id: d.c.id, event };
    const c = d.c;
    const tip = this.tooltip;
    tip.replaceChildren();
    tip.append(KS.el("strong", {}, KS.displayName(c)));
    const gained = KS.growth(c.history);
    tip.append(KS.el("div", {}, `${c.count.toLocaleString()} conversations · ${KS.share(c.count, this.ctx.total)}`));
    tip.append(KS.el("div", {}, `growth: +${gained.toLocaleString()} recently`));
    const mark = this.ctx.mark(c);
    if (mark) tip.append(KS.el("div", {}, mark === "new" ? "new cluster" : "renamed lately"));
    if (d.pending) tip.append(KS.el("div", {}, "not on the map yet: placed at the next recompute"));
    const box = this.svgEl.getBoundingClientRect();
    tip.style.left = `${event.clientX - box.left + 14}px`;
    tip.style.top = `${event.clientY - box.top + 14}px`;
    tip.hidden = false;
  }
};
