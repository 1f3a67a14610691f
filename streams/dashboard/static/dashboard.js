// Funnelstream dashboard, loading: the controls, the address bar, fetching the JSON documents
// and refreshing them while a worker runs.
import { $, drawCustomers, drawDeadLetters, drawMarketing, drawReport, drawSeries, el } from "./draw.js";

const state = { timer: null, live: false, refreshS: 5 };

// ---- the query the controls describe, kept in the address bar so a view can be shared.
function wanted() {
  const range = $("range").value;
  let from = $("from").value.trim(), to = $("to").value.trim();
  if (range !== "custom") {
    const end = new Date();
    to = end.toISOString();
    from = new Date(end.getTime() - Number(range) * 1000).toISOString();
  }
  return { site: $("site").value, from, to, by: $("by").value };
}
function remember(q) {
  const url = new URL(location.href);
  url.search = "";
  url.searchParams.set("site", q.site);
  if ($("range").value === "custom") { url.searchParams.set("from", q.from); url.searchParams.set("to", q.to); }
  else url.searchParams.set("range", $("range").value);
  if (q.by) url.searchParams.set("by", q.by);
  if (state.refreshS !== 5) url.searchParams.set("refresh", String(state.refreshS));
  history.replaceState(null, "", url);
}

async function getJson(path, params) {
  const response = await fetch(path + "?" + new URLSearchParams(params), { credentials: "same-origin" });
  if (response.status === 404) return null;
  let body = null;
  try { body = await response.json(); } catch (e) { body = null; }
  if (!response.ok) throw new Error((body && body.error) || `${path}: ${response.status} ${response.statusText}`);
  return body;
}

// ---- loading
// A report another module serves (listed by /api/sites): its own failure stays in its panel.
async function optional(name, params, draw) {
  if (!(state.extra || []).includes(name)) { draw(null); return; }
  try {
    draw(await getJson("/" + name, params));
  } catch (err) {
    draw(null);
    $(name).hidden = false;
    $(name + "-note").textContent = `${name} report unavailable: ${err.message || err}`;
  }
}

async function load() {
  const q = wanted();
  state.last = q;
  remember(q);
  $("range-label").textContent = `${q.from} → ${q.to}`;
  const params = { site: q.site, from: q.from, to: q.to };
  try {
    const [report, series, dlq] = await Promise.all([
      getJson("/api/report", q.by ? { ...params, by: q.by } : params),
      getJson("/api/series", params),
      getJson("/api/dead-letters", { from: q.from, to: q.to }),
    ]);
    drawReport(report);
    drawSeries(series);
    drawDeadLetters(dlq);
    await optional("marketing", { ...params, format: "json" }, drawMarketing);
    await optional("customers", { site: q.site, as_of: q.to, cohorts: "month", segments: "1", format: "json" }, drawCustomers);
    $("error").hidden = true;
    $("status").textContent = `Updated ${new Date().toISOString().slice(11, 19)} UTC` +
      (state.live ? ` · refreshing every ${state.refreshS} s` : " · worker stopped, not refreshing");
  } catch (err) {
    $("error").textContent = String(err.message || err);
    $("error").hidden = false;
  }
  // For tests and scripts: how many loads finished, and which query the page shows now.
  document.body.setAttribute("data-loaded", String(Number(document.body.getAttribute("data-loaded") || 0) + 1));
  document.body.setAttribute("data-shown", [q.site, q.from, q.to, q.by].join("|"));
}

// The sites with data join the picker (new ones too, while a worker runs); how many there are.
async function addSites() {
  const info = await getJson("/api/sites", {});
  state.live = info.live;
  state.extra = info.reports || [];
  const known = new Set(Array.from($("site").options, (option) => option.value));
  for (const site of info.sites) if (!known.has(site)) $("site").append(el("option", site, { value: site }));
  return info.sites.length;
}

function schedule() {
  clearTimeout(state.timer);
  if (state.live) state.timer = setTimeout(async () => { await load(); schedule(); }, state.refreshS * 1000);
}

async function start() {
  const url = new URL(location.href);
  const given = (name) => url.searchParams.get(name);
  state.refreshS = Math.max(1, Number(given("refresh")) || 5);
  try {
    // A worker that just started has no site yet: ask again until one has data.
    while (!(await addSites())) {
      $("status").textContent = "No data yet: send events to the worker.";
      if (!state.live) return;
      await new Promise((resolve) => setTimeout(resolve, state.refreshS * 1000));
    }
  } catch (err) {
    $("error").textContent = String(err.message || err);
    $("error").hidden = false;
    return;
  }
  if (given("site")) $("site").value = given("site");
  if (given("from") && given("to")) { $("range").value = "custom"; $("from").value = given("from"); $("to").value = given("to"); }
  else if (given("range")) $("range").value = given("range");
  if (given("by")) $("by").value = given("by");
  for (const id of ["from", "to"]) $(id).addEventListener("input", () => { $("range").value = "custom"; });
  $("controls").addEventListener("submit", async (e) => { e.preventDefault(); await load(); schedule(); });
  for (const id of ["site", "range", "by"]) $(id).addEventListener("change", async () => {
    if (id === "range" && $("range").value === "custom") {  // start from the range shown
      $("from").value = $("from").value || state.last.from; $("to").value = $("to").value || state.last.to;
      return;
    }
    await load(); schedule();
  });
  await load();
  schedule();
}

document.addEventListener("DOMContentLoaded", start);
