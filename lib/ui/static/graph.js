// Draws a small directed acyclic graph (a job's stages, a batch's stages) as SVG: boxes in
// columns by depth (a box right of every box it reads), edges as curves with arrows. The graphs
// are a handful of stages, so a layered layout is all they need.

const SVG = 'http://www.w3.org/2000/svg';
const BOX_W = 230;
const GAP_X = 70;
const GAP_Y = 24;
const LINE_H = 16;
const PAD = 10;

function el(name, attrs, text) {
  const e = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

/** Text cut to fit a box, with an ellipsis. */
function fit(text, chars) {
  return text.length > chars ? `${text.slice(0, chars - 1)}…` : text;
}

/**
 * `nodes`: [{ id, title, lines: [..], kind, href? }]; `edges`: [[fromId, toId]] (from is read by to).
 * Returns an <svg> element sized to the graph.
 */
export function drawGraph(nodes, edges) {
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const parents = new Map(nodes.map((n) => [n.id, []]));
  for (const [from, to] of edges) if (byId.has(from) && byId.has(to)) parents.get(to).push(from);
  const depth = new Map();
  const depthOf = (id, seen = new Set()) => {
    if (depth.has(id)) return depth.get(id);
    if (seen.has(id)) return 0;
    seen.add(id);
    const d = parents.get(id).reduce((m, p) => Math.max(m, depthOf(p, seen) + 1), 0);
    depth.set(id, d);
    return d;
  };
  const columns = [];
  for (const n of nodes) (columns[depthOf(n.id)] ??= []).push(n);

  const height = (n) => 2 * PAD + LINE_H * (1 + n.lines.length);
  const pos = new Map();
  let totalH = 0;
  columns.forEach((col, c) => {
    let y = PAD;
    for (const n of col) {
      pos.set(n.id, { x: PAD + c * (BOX_W + GAP_X), y, h: height(n) });
      y += height(n) + GAP_Y;
    }
    totalH = Math.max(totalH, y);
  });
  const width = PAD * 2 + columns.length * BOX_W + (columns.length - 1) * GAP_X;
  const svg = el('svg', { width, height: totalH, viewBox: `0 0 ${width} ${totalH}`, class: 'graph' });
  const defs = el('defs', {});
  const marker = el('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' });
  marker.appendChild(el('path', { d: 'M 0 0 L 10 5 L 0 10 z', class: 'arrow' }));
  defs.appendChild(marker);
  svg.appendChild(defs);

  for (const [from, to] of edges) {
    const a = pos.get(from);
    const b = pos.get(to);
    if (!a || !b) continue;
    const x1 = a.x + BOX_W;
    const y1 = a.y + a.h / 2;
    const x2 = b.x;
    const y2 = b.y + b.h / 2;
    const mid = (x1 + x2) / 2;
    svg.appendChild(el('path', { d: `M ${x1} ${y1} C ${mid} ${y1}, ${mid} ${y2}, ${x2} ${y2}`, class: 'edge', 'marker-end': 'url(#arrow)' }));
  }
  for (const n of nodes) {
    const p = pos.get(n.id);
    const g = el('g', { class: `node ${n.kind ?? ''}`, 'data-id': n.id });
    g.appendChild(el('rect', { x: p.x, y: p.y, width: BOX_W, height: p.h, rx: 6 }));
    g.appendChild(el('text', { x: p.x + PAD, y: p.y + PAD + 12, class: 'title' }, fit(n.title, 30)));
    n.lines.forEach((line, i) => g.appendChild(el('text', { x: p.x + PAD, y: p.y + PAD + 12 + LINE_H * (i + 1) }, fit(line, 34))));
    const title = el('title', {}, [n.title, ...n.lines].join('\n'));
    g.appendChild(title);
    if (n.href) {
      const a = el('a', { href: n.href });
      a.appendChild(g);
      svg.appendChild(a);
    } else svg.appendChild(g);
  }
  return svg;
}
