// Funnelstream dashboard, drawing: the JSON documents into the page. No framework, no library:
// DOM text nodes for every number (data is never parsed as markup) and hand-built SVG for the
// two time charts. Formatting only makes exact values readable; the JSON keeps them exact.
const STAGES = ["page_view", "add_to_cart", "checkout", "purchase"];
const LINE_STYLES = [  // colour and dash, so the lines differ without colour too
  { color: "#1f5fa8", dash: "" }, { color: "#b35c00", dash: "6 3" },
  { color: "#2e7d32", dash: "2 3" }, { color: "#8e2472", dash: "8 3 2 3" },
];
const SVG = "http://www.w3.org/2000/svg";
export const $ = (id) => document.getElementById(id);

// ---- formatting: the JSON keeps exact values; these only make them readable.
const int = (n) => (n === null || n === undefined ? "–" : Number(n).toLocaleString("en-US"));
const pct = (v) => (v === null || v === undefined ? "–" : (v * 100).toFixed(1) + "%");
function money(text) {
  const [whole, cents] = String(text).split(".");
  const sign = whole.startsWith("-") ? "-" : "";
  // Grouped as text: amounts are exact decimals, past what a JS number holds.
  const grouped = whole.replace("-", "").replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return sign + grouped + (cents ? "." + cents : "");
}
const stamp = (iso) => iso.slice(11, 16);

export function el(tag, text, attrs) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = text;
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  return node;
}
function setField(name, text) {
  for (const node of document.querySelectorAll(`[data-field="${name}"]`)) node.textContent = text;
}
function fillTable(table, headers, rows) {
  table.replaceChildren();
  const head = el("tr");
  for (const h of headers) head.append(el("th", h, { scope: "col" }));
  table.append(el("thead"), el("tbody"));
  table.tHead.append(head);
  for (const cells of rows) {
    const tr = el("tr");
    cells.forEach((cell, i) => {
      const td = i === 0 ? el("th", null, { scope: "row" }) : el("td");
      if (cell instanceof Node) td.append(cell); else td.textContent = cell;
      tr.append(td);
    });
    table.tBodies[0].append(tr);
  }
  return table;
}

// ---- panels
export function drawReport(r) {
  const stages = r.stages.map((s) => s.sessions);
  setField("sessions", int(stages[0]));
  setField("overall_conversion", pct(r.overall_conversion));
  setField("orders", int(r.orders));
  setField("cart_abandonment_rate", pct(r.cart_abandonment_rate));
  const body = $("funnel-table").tBodies[0];
  body.replaceChildren();
  const worstTo = r.worst_step ? r.worst_step.to : null;
  r.stages.forEach((s, i) => {
    const step = i > 0 ? r.steps[i - 1] : null;
    const tr = el("tr", null, { "data-stage": s.stage });
    if (s.stage === worstTo) { tr.className = "worst"; tr.setAttribute("data-worst", "true"); }
    const name = el("th", s.stage, { scope: "row" });
    if (s.stage === worstTo) name.append(el("span", " worst step", { class: "flag" }));
    const share = stages[0] ? s.sessions / stages[0] : 0;
    const bar = el("div", null, { class: "bar", role: "presentation" });
    const fill = el("span");
    fill.style.width = (share * 100).toFixed(2) + "%";
    bar.append(fill);
    tr.append(name,
      el("td", int(s.sessions), { "data-field": "sessions" }),
      el("td", step ? pct(step.conversion) : "–", { "data-field": "step" }),
      el("td", step ? pct(step.drop_off) : "–", { "data-field": "drop_off" }),
      el("td", pct(stages[0] ? s.sessions / stages[0] : null), { "data-field": "overall" }),
      el("td", null, { class: "bar-col" }));
    tr.lastChild.append(bar);
    body.append(tr);
  });
  $("worst").textContent = r.worst_step
    ? `Worst step: ${r.worst_step.from} → ${r.worst_step.to}, ${pct(r.worst_step.drop_off)} drop`
    : `Worst step: none (no step starts from ${r.min_sessions}+ sessions)`;
  setField("carts_opened", int(r.carts_opened));
  setField("carts_abandoned", int(r.carts_abandoned));
  setField("carts_recovered", int(r.carts_recovered));
  setField("cart_abandonment", pct(r.cart_abandonment_rate));
  const money_body = $("money-table").tBodies[0];
  money_body.replaceChildren();
  const currencies = Object.keys(r.revenue);
  if (!currencies.length) money_body.append(el("tr")).append(el("td", "no orders in the range", { colspan: "3" }));
  for (const c of currencies) {
    const tr = el("tr", null, { "data-currency": c });
    tr.append(el("th", c, { scope: "row" }), el("td", money(r.revenue[c]), { "data-field": "revenue" }),
      el("td", money(r.aov[c]), { "data-field": "aov" }));
    money_body.append(tr);
  }
  drawBreakdown(r);
}

function drawBreakdown(r) {
  const section = $("breakdown");
  section.hidden = !r.by;
  if (!r.by) return;
  const label = $("by").selectedOptions[0].textContent;
  $("breakdown-h").textContent = `Breakdown by ${label}`;
  const table = fillTable($("breakdown-table"),
    [label, ...STAGES, "Overall", "Worst step", "Orders", "Revenue"],
    r.breakdown.map((b) => [b.key, ...b.stages.map((s) => int(s.sessions)), pct(b.overall_conversion),
      b.worst_step ? `${b.worst_step.from} → ${b.worst_step.to}` : "–", int(b.orders),
      Object.entries(b.revenue).map(([c, v]) => `${c} ${money(v)}`).join(", ") || "–"]));
  Array.from(table.tBodies[0].rows).forEach((tr, i) => tr.setAttribute("data-key", r.breakdown[i].key));
}

export function drawSeries(s) {
  $("step-label").textContent = `(one point per ${s.step_s >= 3600 ? s.step_s / 3600 + " h" : s.step_s / 60 + " min"})`;
  const times = s.points.map((p) => p.at);
  lineChart($("stages-chart"), times, STAGES.map((name, i) => ({ name, values: s.points.map((p) => p.sessions[i]) })), int);
  lineChart($("conversion-chart"), times, [{ name: "conversion", values: s.points.map((p) => p.conversion) }], pct);
  fillTable($("series-table"), ["Bucket start (UTC)", ...STAGES, "Conversion"],
    s.points.map((p) => [p.at, ...p.sessions.map(int), pct(p.conversion)]));
}

function lineChart(svg, times, series, format) {
  const W = 560, H = 220, L = 56, R = 10, T = 10, B = 46;
  svg.replaceChildren();
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  const all = series.flatMap((s) => s.values).filter((v) => v !== null);
  const max = Math.max(...all, 0) || 1;
  const x = (i) => L + (times.length > 1 ? (i * (W - L - R)) / (times.length - 1) : 0);
  const y = (v) => T + (H - T - B) * (1 - v / max);
  const add = (tag, attrs, text) => {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    svg.append(node);
    return node;
  };
  for (const f of [0, 0.5, 1]) {  // y grid with real-text labels
    add("line", { x1: L, x2: W - R, y1: y(max * f), y2: y(max * f), class: "grid" });
    add("text", { x: L - 6, y: y(max * f) + 4, "text-anchor": "end", class: "tick" }, format(max * f));
  }
  if (times.length) {  // first, middle and last bucket, anchored so none is cut at an edge
    const ticks = [[0, "start"], [Math.floor((times.length - 1) / 2), "middle"], [times.length - 1, "end"]];
    for (const [i, anchor] of ticks) add("text", { x: x(i), y: H - B + 16, "text-anchor": anchor, class: "tick" }, stamp(times[i]));
  }
  add("text", { x: (L + W - R) / 2, y: H - B + 32, "text-anchor": "middle", class: "tick" }, "time (UTC)");
  series.forEach((s, k) => {
    const style = LINE_STYLES[k % LINE_STYLES.length];
    let d = "", pen = "M";
    s.values.forEach((v, i) => {
      if (v === null) { pen = "M"; return; }
      d += `${pen}${x(i).toFixed(1)},${y(v).toFixed(1)} `;
      pen = "L";
    });
    const path = add("path", { d: d.trim(), fill: "none", stroke: style.color, "stroke-width": 2, "stroke-dasharray": style.dash });
    path.append(Object.assign(document.createElementNS(SVG, "title"), { textContent: s.name }));
    if (series.length > 1) {  // legend
      const lx = L + 8 + k * 120;
      add("line", { x1: lx, x2: lx + 22, y1: H - 6, y2: H - 6, stroke: style.color, "stroke-width": 2, "stroke-dasharray": style.dash });
      add("text", { x: lx + 26, y: H - 2, class: "tick" }, s.name);
    }
  });
  const last = series.map((s) => `${s.name} ${format(s.values.at(-1) ?? null)}`).join(", ");
  svg.setAttribute("aria-label", `${series.length > 1 ? "Stage entries" : "Conversion"} over ${times.length} buckets; last bucket: ${last}`);
}

export function drawDeadLetters(d) {
  const max = Math.max(1, ...d.reasons.map((r) => r.count));
  const rows = d.reasons.map((r) => {
    const bar = el("div", null, { class: "bar", role: "presentation" });
    const fill = el("span");
    fill.style.width = ((100 * r.count) / max).toFixed(2) + "%";
    bar.append(fill);
    return [r.reason_code, int(r.count), r.example, bar];
  });
  if (!rows.length) rows.push(["none", "0", "no message was rejected in the range", ""]);
  fillTable($("dlq-table"), ["Reason", "Messages", "Latest example", ""], rows);
}

export function drawMarketing(m) {
  const show = Boolean(m && Array.isArray(m.channels) && m.channels.length);
  $("marketing").hidden = !show;
  if (!show) return;
  $("marketing-note").textContent = `Attribution ${m.attribution}, margin ${m.margin}; currencies are never converted.`;
  const dec = (v) => (v === null || v === undefined ? "–" : money(v));
  const num = (v) => (v === null || v === undefined ? "–" : String(v));
  fillTable($("marketing-table"),
    ["Channel", "Currency", "Spend", "Sessions", "Orders", "Revenue", "New customers", "CAC", "CPO", "ROAS", "ROMI", "Conversion"],
    m.channels.map((c) => [c.key, c.currency, dec(c.spend), int(c.sessions), int(c.orders), dec(c.revenue),
      int(c.new_customers), dec(c.cac), dec(c.cpo), num(c.roas), num(c.romi), pct(c.conversion)]));
}

const CUSTOMER_KEYS = ["customers", "guest_orders", "repeat_customers", "repeat_purchase_rate",
  "orders_per_customer", "aov", "historical_clv", "clv_to_aov"];
function scalar(key, v) {
  if (v === null || v === undefined) return "–";
  if (typeof v === "object") return Object.entries(v).map(([c, x]) => `${c} ${scalar(key, x)}`).join(", ");
  if (typeof v === "string") return /^-?\d+(\.\d+)?$/.test(v) ? money(v) : v;
  if (key.endsWith("_rate")) return pct(v);
  return Number.isInteger(v) ? int(v) : v.toFixed(2);
}
function rowsTable(table, rows) {  // a generic table over a list of flat objects
  const list = Array.isArray(rows) ? rows : Object.entries(rows || {}).map(([k, v]) => ({ segment: k, ...v }));
  const keys = list.length ? Object.keys(list[0]).filter((k) => !Array.isArray(list[0][k])) : [];
  const arrayKey = list.length ? Object.keys(list[0]).find((k) => Array.isArray(list[0][k])) : undefined;
  const width = arrayKey ? Math.max(...list.map((r) => r[arrayKey].length)) : 0;
  fillTable(table, [...keys, ...Array.from({ length: width }, (_, i) => `+${i + 1}`)],
    list.map((r) => [...keys.map((k) => scalar(k, r[k])), ...Array.from({ length: width }, (_, i) => heat(r[arrayKey][i]))]));
}
function heat(v) {
  const cell = el("span", v === undefined || v === null ? "" : pct(v), { class: "heat" });
  // At most 55% of the accent colour, so the dark text keeps a 7:1 contrast on every cell.
  if (typeof v === "number") cell.style.backgroundColor = `rgba(31, 95, 168, ${(0.55 * Math.min(1, v)).toFixed(3)})`;
  return cell;
}
export function drawCustomers(c) {
  const summary = c && (c.summary || c);
  const show = Boolean(summary && CUSTOMER_KEYS.some((k) => k in summary));
  $("customers").hidden = !show;
  if (!show) return;
  $("customers-note").textContent = c.as_of ? `As of ${c.as_of}` : "";
  const dl = $("customers-summary");
  dl.replaceChildren();
  for (const k of CUSTOMER_KEYS) if (k in summary) dl.append(el("dt", k.replaceAll("_", " ")), el("dd", scalar(k, summary[k])));
  rowsTable($("segments-table"), c.segments || []);
  rowsTable($("cohorts-table"), c.cohorts || []);
}

