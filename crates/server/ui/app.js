// Strata dashboard: the panes over the service's JSON API. Every request goes through
// api(), which sends the token (when the service has tokens) as `Authorization: Bearer`;
// the job event stream is read with fetch() for the same reason (EventSource cannot send
// headers, and a token in a URL ends up in logs). Data is written into the page with
// textContent only, never as HTML.
"use strict";

const TOKEN_KEY = "strata.token";
const REFRESH_MS = 5000;
const PANES = ["tiers", "objects", "object", "jobs", "plan", "model", "charts"];

const $ = (id) => document.getElementById(id);
const state = { jobs: new Map(), stream: null, refresh: null, modelVersion: null };

// ---------- formatting ----------

function bytes(n) {
  if (n === null || n === undefined) return "-";
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let value = Number(n);
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}

function money(n) {
  const value = Number(n || 0);
  return value !== 0 && Math.abs(value) < 0.01 ? `$${value.toExponential(2)}` : `$${value.toFixed(2)}`;
}

function when(ms) {
  return ms ? new Date(ms).toLocaleString() : "never";
}

function cell(row, content, className) {
  const td = document.createElement("td");
  if (content instanceof Node) td.appendChild(content);
  else td.textContent = content === null || content === undefined ? "" : String(content);
  if (className) td.className = className;
  row.appendChild(td);
  return td;
}

function stateCell(row, jobState) {
  return cell(row, jobState, `state state-${jobState}`);
}

function link(href, label) {
  const a = document.createElement("a");
  a.href = href;
  a.textContent = label;
  return a;
}

function objectLink(key) {
  return link(`#object/${encodeURIComponent(key)}`, key);
}

function showMessage(text) {
  const message = $("message");
  message.textContent = text || "";
  message.hidden = !text;
}

// ---------- the API and its token ----------

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

function authHeaders() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  return token ? { Authorization: `Bearer ${token}` } : {};
}

async function api(path, options = {}) {
  const response = await fetch(path, {
    ...options,
    headers: { Accept: "application/json", ...authHeaders(), ...(options.headers || {}) },
    cache: "no-store",
  });
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    const error = body && body.error ? body.error : {};
    const failure = new ApiError(response.status, error.code || "http_error",
      error.message || `${path} answered ${response.status}`);
    if (response.status === 401) askForToken(failure.message);
    throw failure;
  }
  return body;
}

function askForToken(reason) {
  sessionStorage.removeItem(TOKEN_KEY);
  stopStream();
  $("token-error").textContent = reason || "";
  $("token-dialog").hidden = false;
  $("forget-token").hidden = true;
  $("token-input").focus();
}

async function useToken(event) {
  event.preventDefault();
  const token = $("token-input").value.trim();
  if (!token) {
    $("token-error").textContent = "Paste a token made by `strata token create`.";
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  $("token-input").value = "";
  try {
    await api("/v1/tiers");
  } catch (error) {
    // api() has put the dialog back with the service's reason on a 401.
    if (error.status !== 401) $("token-error").textContent = error.message;
    return;
  }
  $("token-dialog").hidden = true;
  $("token-error").textContent = "";
  $("forget-token").hidden = false;
  start();
}

// ---------- the job event stream ----------

function setLive(live) {
  const badge = $("live");
  badge.textContent = live ? "live" : "offline";
  badge.className = `live ${live ? "on" : "off"}`;
}

function stopStream() {
  if (state.stream) state.stream.abort();
  state.stream = null;
  setLive(false);
}

// Reads `/v1/events` as a stream of server-sent events; reconnects after a failure.
async function streamEvents() {
  stopStream();
  const controller = new AbortController();
  state.stream = controller;
  try {
    const response = await fetch("/v1/events", {
      headers: { Accept: "text/event-stream", ...authHeaders() },
      signal: controller.signal,
      cache: "no-store",
    });
    if (response.status === 401) {
      const body = await response.json().catch(() => ({}));
      askForToken(body.error ? body.error.message : "the token was refused");
      return;
    }
    if (response.status === 403) {
      // A read token: no live job updates, and no point asking again every two seconds.
      state.stream = null;
      setLive(false);
      $("live").textContent = "no live updates (needs an admin token)";
      return;
    }
    if (!response.ok || !response.body) throw new Error(`/v1/events answered ${response.status}`);
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        handleEvent(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
      }
    }
  } catch (error) {
    if (controller.signal.aborted) return;
  }
  if (state.stream === controller) {
    setLive(false);
    setTimeout(() => {
      if (state.stream === controller) streamEvents();
    }, 2000);
  }
}

function handleEvent(block) {
  let name = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (line.startsWith("event:")) name = line.slice(6).trim();
    else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
  }
  if (name === "ready") {
    setLive(true);
    loadJobs();
  } else if (name === "job") {
    const event = JSON.parse(data.join("\n"));
    upsertJob({
      id: event.id, key: event.key, from_tier: event.from, to_tier: event.to,
      state: event.state, reason: event.reason, last_error: event.error,
    });
  } else if (name === "lagged") {
    loadJobs();
  }
}

// ---------- jobs ----------

const RETRYABLE = new Set(["failed", "cancelled", "skipped"]);
const FINISHED = new Set(["done", "failed", "cancelled", "skipped"]);

function upsertJob(job) {
  const known = state.jobs.get(job.id) || {};
  state.jobs.set(job.id, { ...known, ...job });
  renderJobs();
}

async function fetchJobs() {
  const answer = await api("/v1/jobs?limit=200");
  for (const job of answer.jobs) state.jobs.set(job.id, job);
  renderJobs();
}

// The stream's (re)load of the job list: its errors are shown, not thrown.
async function loadJobs() {
  try {
    await fetchJobs();
  } catch (error) {
    if (error.status !== 401) showMessage(`jobs: ${error.message}`);
  }
}

async function jobAction(id, action) {
  try {
    const job = await api(`/v1/jobs/${id}/${action}`, { method: "POST" });
    upsertJob(job);
    showMessage("");
  } catch (error) {
    if (error.status !== 401) showMessage(`${action} job ${id}: ${error.message}`);
  }
}

// Rows are kept by job id and rebuilt only when their job changed, so a row (and its
// buttons) stays put while other jobs' events arrive.
function renderJobs() {
  const body = $("jobs-table").tBodies[0];
  const jobs = [...state.jobs.values()].sort((a, b) => b.id - a.id).slice(0, 200);
  const rows = new Map([...body.rows].map((row) => [Number(row.dataset.jobId), row]));
  let previous = null;
  for (const job of jobs) {
    let row = rows.get(job.id);
    rows.delete(job.id);
    const signature = JSON.stringify([job.state, job.last_error, job.from_tier, job.to_tier]);
    if (!row || row.dataset.signature !== signature) {
      const fresh = jobRow(job);
      fresh.dataset.signature = signature;
      if (row) row.replaceWith(fresh);
      row = fresh;
    }
    const wanted = previous ? previous.nextSibling : body.firstChild;
    if (row !== wanted) body.insertBefore(row, wanted);
    previous = row;
  }
  for (const stale of rows.values()) stale.remove();
}

function jobRow(job) {
  const row = document.createElement("tr");
  row.dataset.jobId = job.id;
  row.dataset.state = job.state;
  cell(row, job.id, "num");
  cell(row, objectLink(job.key));
  cell(row, job.from_tier);
  cell(row, job.to_tier);
  stateCell(row, job.state);
  cell(row, job.reason);
  cell(row, job.last_error || "", "error");
  const actions = cell(row, "");
  if (RETRYABLE.has(job.state)) actions.appendChild(actionButton("Retry", "retry", job.id));
  if (!FINISHED.has(job.state)) actions.appendChild(actionButton("Cancel", "cancel", job.id));
  return row;
}

function actionButton(label, action, id) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = action;
  button.textContent = label;
  button.addEventListener("click", () => {
    button.disabled = true;
    jobAction(id, action);
  });
  return button;
}

// ---------- tiers ----------

async function loadTiers() {
  const [answer, health] = await Promise.all([
    api("/v1/tiers"),
    fetch("/healthz", { cache: "no-store" }).then((response) => response.json()),
  ]);
  // The chaos rules in force (`strata chaos`), which /healthz shows to anyone.
  const chaos = new Map((health.chaos || []).map((entry) => [entry.tier, entry.rules]));
  $("total-cost").textContent = money(answer.total_monthly_cost);
  const body = $("tiers-table").tBodies[0];
  body.replaceChildren();
  for (const tier of answer.tiers) {
    const row = body.insertRow();
    row.dataset.tier = tier.name;
    cell(row, tier.default ? `${tier.name} (default)` : tier.name);
    cell(row, tier.classes.join(", "));
    cell(row, usageBar(tier));
    cell(row, tier.objects, "num");
    cell(row, money(tier.monthly_cost), "num");
    cell(row, tier.domains > 1 ? `${tier.redundancy} over ${tier.domains} domains` : tier.redundancy);
    const rules = chaos.get(tier.name) || [];
    cell(row, chaosText(rules), rules.length ? "error" : "note");
    cell(row, tier.store);
  }
  // Counted by the service over every object (`objects_by_class` of /v1/tiers).
  const counts = answer.objects_by_class || {};
  const colours = { hot: "#d1495b", warm: "#edae49", cold: "#00798c" };
  Charts.bars($("class-chart"),
    ["hot", "warm", "cold"].map((label) => ({ label, value: counts[label] || 0, colour: colours[label] })),
    (v) => Math.round(v).toString());
}

// One line for a tier's chaos rules: what each injects, on which operation, and what is
// left of it ("none" without rules).
function chaosText(rules) {
  if (rules.length === 0) return "none";
  return rules.map((rule) => {
    const what = rule.fault === "latency" ? `latency ${rule.latency_ms} ms` : rule.fault;
    const on = rule.op ? ` on ${rule.op}` : "";
    const left = [];
    if (rule.remaining != null) left.push(`${rule.remaining} calls`);
    if (rule.expires_in_ms != null) left.push(`${Math.ceil(rule.expires_in_ms / 1000)} s`);
    return `${what}${on} (${left.join(" or ")} left, ${rule.injected} injected)`;
  }).join("; ");
}

function usageBar(tier) {
  const bar = document.createElement("div");
  bar.className = "bar";
  const fill = document.createElement("span");
  const label = document.createElement("em");
  if (tier.capacity_bytes) {
    const share = Math.min(1, tier.used_bytes / tier.capacity_bytes);
    fill.style.width = `${(share * 100).toFixed(1)}%`;
    label.textContent = `${bytes(tier.used_bytes)} of ${bytes(tier.capacity_bytes)}`;
  } else {
    fill.style.width = "0";
    label.textContent = `${bytes(tier.used_bytes)} (no capacity set)`;
  }
  bar.append(fill, label);
  return bar;
}

// ---------- objects ----------

async function loadObjects() {
  const prefix = $("object-prefix").value;
  const wanted = $("object-class").value;
  const listing = await api(`/v1/objects?heat=true&limit=1000&prefix=${encodeURIComponent(prefix)}`);
  const objects = listing.objects.filter((o) => !wanted || o.class === wanted);
  const body = $("objects-table").tBodies[0];
  body.replaceChildren();
  const shown = objects.slice(0, 200);
  for (const object of shown) {
    const row = body.insertRow();
    row.dataset.key = object.key;
    cell(row, objectLink(object.key));
    cell(row, bytes(object.size), "num");
    cell(row, object.tier);
    cell(row, object.class, `class-${object.class}`);
    const forecast = cell(row, "-", "forecast");
    cell(row, `${object.access.count_1h} / ${object.access.count_24h}`, "num");
    cell(row, when(object.access.last_access_ms));
    loadForecast(object.key, forecast);
  }
  $("objects-more").textContent = listing.truncated || objects.length > shown.length
    ? "More objects match: narrow the prefix." : `${objects.length} objects`;
}

async function loadForecast(key, target) {
  if (state.modelVersion === null) {
    target.textContent = "no model";
    return;
  }
  try {
    const forecast = await api(`/v1/predictions/${encodeURIComponent(key)}`);
    target.textContent = `${forecast.predicted_reads.toFixed(1)} reads → ${forecast.tier}`;
  } catch (error) {
    target.textContent = error.code === "no_model" ? "no model" : "-";
  }
}

async function loadObject(key) {
  $("object-key").textContent = key;
  const answer = await api(`/v1/explain/${encodeURIComponent(key)}`);
  const lines = $("object-lines");
  lines.replaceChildren();
  for (const line of answer.lines) {
    const item = document.createElement("li");
    item.textContent = line;
    lines.appendChild(item);
  }
  Charts.bars($("object-access-chart"),
    (answer.history || []).map((h) => ({
      label: new Date(h.hour_ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }),
      value: h.reads + h.writes,
    })),
    (v) => Math.round(v).toString());
  const decisions = $("object-decisions").tBodies[0];
  decisions.replaceChildren();
  for (const decision of answer.decisions) {
    const row = decisions.insertRow();
    cell(row, when(decision.ts_ms));
    cell(row, decision.class, `class-${decision.class}`);
    cell(row, decision.action);
    cell(row, decision.reason);
    cell(row, decision.explanation);
    cell(row, decision.job_id === null ? "" : decision.job_id, "num");
  }
  const jobs = $("object-jobs").tBodies[0];
  jobs.replaceChildren();
  for (const job of answer.jobs) {
    const row = jobs.insertRow();
    row.dataset.jobId = job.id;
    cell(row, job.id, "num");
    cell(row, job.from_tier);
    cell(row, job.to_tier);
    stateCell(row, job.state);
    cell(row, job.reason);
    cell(row, job.last_error || "", "error");
  }
}

// ---------- plan ----------

async function loadPlan() {
  const answer = await api("/v1/plan");
  const savings = new Map((answer.costs ? answer.costs.moves : []).map((m) => [m.key, m]));
  const costs = answer.costs;
  $("plan-summary").textContent = costs
    ? `${answer.plan.moves.length} moves proposed: monthly cost ${money(costs.monthly_cost_before)} → ` +
      `${money(costs.monthly_cost_after)} (saving ${money(costs.monthly_cost_before - costs.monthly_cost_after)} ` +
      `a month; the moves cost ${money(costs.moves_cost)} once)`
    : `${answer.plan.moves.length} moves proposed`;
  const body = $("plan-table").tBodies[0];
  body.replaceChildren();
  for (const move of answer.plan.moves) {
    const row = body.insertRow();
    row.dataset.key = move.key;
    cell(row, objectLink(move.key));
    cell(row, bytes(move.size), "num");
    cell(row, move.from);
    cell(row, move.to);
    cell(row, move.reason);
    const saving = savings.get(move.key);
    cell(row, saving ? money(saving.saving_per_month) : "-", "num");
    cell(row, move.explanation);
  }
  const waits = $("plan-waits");
  waits.replaceChildren();
  for (const wait of answer.plan.waits) {
    const item = document.createElement("li");
    item.textContent = `${wait.key}: ${wait.explanation || wait.reason}`;
    waits.appendChild(item);
  }
  if (answer.plan.waits.length === 0) {
    const item = document.createElement("li");
    item.textContent = "No wanted move is waiting.";
    waits.appendChild(item);
  }
}

async function runPlan() {
  const button = $("plan-run");
  button.disabled = true;
  try {
    const answer = await api("/v1/plan", { method: "POST" });
    $("plan-result").textContent =
      `Ran: ${answer.jobs.length} jobs queued (${answer.jobs.join(", ") || "none"}).`;
    await loadPlan();
  } catch (error) {
    if (error.status !== 401) $("plan-result").textContent = `The plan did not run: ${error.message}`;
  } finally {
    button.disabled = false;
  }
}

// ---------- model ----------

const METRICS = [
  ["source", "Trained on"], ["rows", "Rows"], ["objects", "Objects"], ["windows", "Windows"],
  ["training_seconds", "Training time (s)"], ["rmse", "RMSE"], ["f1", "F1"],
  ["precision", "Precision"], ["negative_predictive_value", "Negative predictive value"],
  ["positive_share", "Positive share"], ["threshold", "Threshold"],
];

function definition(list, term, value) {
  const dt = document.createElement("dt");
  dt.textContent = term;
  const dd = document.createElement("dd");
  dd.textContent = value;
  list.append(dt, dd);
  return dd;
}

async function loadModel() {
  const answer = await api("/v1/model");
  const model = answer.model;
  state.modelVersion = model.version;
  const status = $("model-status");
  status.replaceChildren();
  definition(status, "Version", model.version === null ? "none" : model.version).id = "model-version";
  definition(status, "Last trained", when(model.trained_at_ms));
  if (model.fallback) definition(status, "Decisions", model.fallback);
  definition(status, "Training now", answer.training ? "yes" : "no");
  definition(status, "Proactive cycle", answer.proactive.status || "-");
  const body = $("model-metrics").tBodies[0];
  body.replaceChildren();
  for (const [name, label] of METRICS) {
    if (!model.metrics) break;
    const row = body.insertRow();
    cell(row, label);
    const value = model.metrics[name];
    cell(row, typeof value === "number" && !Number.isInteger(value) ? value.toFixed(3) : value,
      "num");
  }
}

async function trainModel() {
  const button = $("model-train");
  button.disabled = true;
  $("model-result").textContent = "Training...";
  try {
    const answer = await api("/v1/model/train", { method: "POST" });
    $("model-result").textContent = `Trained version ${answer.version}.`;
    await loadModel();
  } catch (error) {
    if (error.status !== 401) $("model-result").textContent = `Training failed: ${error.message}`;
  } finally {
    button.disabled = false;
  }
}

// ---------- charts ----------

async function loadCharts() {
  const answer = await api("/v1/trends");
  const samples = answer.samples;
  $("trend-interval").textContent = `${answer.interval_ms / 1000} s`;
  Charts.line($("cost-chart"),
    [{ name: "monthly cost", points: samples.map((s) => [s.ts_ms, s.monthly_cost]) }], money);
  Charts.line($("tier-bytes-chart"),
    answer.tiers.map((name, i) => ({ name, points: samples.map((s) => [s.ts_ms, s.tier_bytes[i]]) })),
    bytes);
  const heat = samples.slice(1).map((s, i) => ({
    label: Charts.timeLabel(s.ts_ms),
    value: Math.max(0, s.accesses - samples[i].accesses),
  }));
  Charts.bars($("heat-chart"), heat, (v) => Math.round(v).toString());
  Charts.line($("moved-chart"),
    [{ name: "bytes moved", points: samples.map((s) => [s.ts_ms, s.moved_bytes]) }], bytes);
}

// ---------- navigation ----------

const LOADERS = {
  tiers: loadTiers,
  objects: loadObjects,
  jobs: fetchJobs,
  plan: loadPlan,
  model: loadModel,
  charts: loadCharts,
};

function route() {
  const hash = decodeURIComponent(location.hash.slice(1)) || "tiers";
  const [pane, ...rest] = hash.split("/");
  return PANES.includes(pane) ? { pane, key: rest.join("/") } : { pane: "tiers", key: "" };
}

async function show() {
  const { pane, key } = route();
  for (const name of PANES) $(`pane-${name}`).hidden = name !== pane;
  for (const a of document.querySelectorAll("#nav a")) {
    a.classList.toggle("active", a.dataset.pane === pane);
  }
  clearInterval(state.refresh);
  const load = pane === "object" ? () => loadObject(key) : LOADERS[pane];
  const run = async () => {
    try {
      await load();
      showMessage("");
    } catch (error) {
      if (error.status !== 401) showMessage(`${pane}: ${error.message}`);
    }
  };
  await run();
  // Panes without a live stream of their own refresh while shown.
  if (["tiers", "charts", "object", "plan"].includes(pane)) state.refresh = setInterval(run, REFRESH_MS);
}

async function start() {
  try {
    const model = await api("/v1/model");
    state.modelVersion = model.model.version;
  } catch (error) {
    if (error.status === 401) return;
  }
  streamEvents();
  show();
}

async function boot() {
  $("token-form").addEventListener("submit", useToken);
  $("forget-token").addEventListener("click", () => askForToken(""));
  $("plan-run").addEventListener("click", runPlan);
  $("model-train").addEventListener("click", trainModel);
  $("object-search").addEventListener("submit", (event) => {
    event.preventDefault();
    loadObjects().catch((error) => showMessage(error.message));
  });
  window.addEventListener("hashchange", show);
  let required = false;
  try {
    const health = await (await fetch("/healthz", { cache: "no-store" })).json();
    required = health.tokens_required === true;
  } catch (error) {
    showMessage(`The service does not answer: ${error.message}`);
  }
  if (required && !sessionStorage.getItem(TOKEN_KEY)) {
    askForToken("");
    return;
  }
  $("forget-token").hidden = !sessionStorage.getItem(TOKEN_KEY);
  start();
}

document.addEventListener("DOMContentLoaded", boot);
