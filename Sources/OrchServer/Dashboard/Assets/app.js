// The dashboard: a small router over the pages under /ui, each built from the API and kept
// current by the live event stream. Everything shown is set as text (never as HTML), so
// nothing a task carries can run as script.

import { api, can, query, session, signIn, subscribe, whenSignedOut } from "./api.js";

// MARK: Building the page

/** An element: `props` are attributes (`on…` functions become listeners), children are nodes or text. */
export function h(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") element.addEventListener(key.slice(2), value);
    else if (value === true) element.setAttribute(key, "");
    else element.setAttribute(key, String(value));
  }
  element.append(...nodes(children));
  return element;
}

/** Children as nodes: arrays flattened, nothing for `undefined`, `null` and `false`, text for the rest. */
function nodes(children) {
  return children.flat(Infinity).filter((child) => child !== undefined && child !== null && child !== false)
    .map((child) => (child instanceof Node ? child : document.createTextNode(String(child))));
}

/** Replaces what `element` holds, with the children rules of `h`. */
function fill(element, ...children) {
  element.replaceChildren(...nodes(children));
}

const main = () => document.getElementById("main");

function show(...children) {
  fill(main(), ...children);
}

function notify(text, kind = "info") {
  const notice = document.getElementById("notice");
  notice.className = kind;
  notice.textContent = text;
  if (text) setTimeout(() => { if (notice.textContent === text) notice.textContent = ""; }, 8000);
}

function link(path, text, props = {}) {
  return h("a", { href: path, ...props }, text);
}

function time(value) {
  if (!value) return "—";
  const date = new Date(value);
  return h("time", { datetime: value, title: value }, date.toLocaleString());
}

function age(seconds) {
  if (seconds === undefined || seconds === null) return "—";
  if (seconds < 60) return `${Math.round(seconds)} s`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min`;
  if (seconds < 86400) return `${(seconds / 3600).toFixed(1)} h`;
  return `${(seconds / 86400).toFixed(1)} d`;
}

/** A run time, in ms below a second, to three figures. */
function seconds(value) {
  return value < 1 ? `${Number((value * 1000).toPrecision(3))} ms` : `${Number(value.toPrecision(3))} s`;
}

const statusMarks = { queued: "○", scheduled: "◷", running: "▶", completed: "✓", failed: "✗", cancelled: "⊘" };

function status(value) {
  return h("span", { class: `status ${value}`, "data-mark": statusMarks[value] || "" }, value);
}

function json(value) {
  return h("pre", { class: "json" }, JSON.stringify(value, null, 2));
}

/** A table; `columns` are [heading, cell(row), numeric?]. Narrow screens show each row as a card. */
function table(columns, rows, empty = "Nothing here.") {
  if (!rows.length) return h("p", { class: "muted" }, empty);
  return h("table", { class: "rows" },
    h("thead", {}, h("tr", {}, columns.map(([heading, , numeric]) => h("th", { class: numeric ? "num" : null, scope: "col" }, heading)))),
    h("tbody", {}, rows.map((row) => h("tr", {}, columns.map(([heading, cell, numeric]) =>
      h("td", { class: numeric ? "num" : null, "data-label": heading }, cell(row)))))));
}

/** A card of [term, value] pairs. */
function fieldList(pairs) {
  return h("div", { class: "card" }, h("dl", { class: "fields" },
    pairs.map(([term, value]) => [h("dt", {}, term), h("dd", {}, value)])));
}

function debounce(action, milliseconds) {
  let timer = null;
  return () => {
    if (timer) return;
    timer = setTimeout(() => { timer = null; action(); }, milliseconds);
  };
}

/**
 * Keeps a page current: `refresh` runs (at most once per `milliseconds`) on each event matching
 * `filters` and whenever the stream (re)connects. Returns the function that stops it.
 */
function live(filters, refresh, milliseconds) {
  const redraw = debounce(() => refresh().catch(() => {}), milliseconds);
  return subscribe(filters, redraw, redraw);
}

async function attempt(action, done) {
  try {
    const answer = await action();
    if (done) notify(done);
    return answer;
  } catch (error) {
    notify(error.message, "error");
    return undefined;
  }
}

// MARK: Routing

const routes = [
  [/^\/ui\/?$/, overviewPage],
  [/^\/ui\/tasks\/?$/, tasksPage],
  [/^\/ui\/tasks\/([^/]+)$/, taskPage],
  [/^\/ui\/cores\/?$/, coresPage],
  [/^\/ui\/cores\/([^/]+)$/, corePage],
  [/^\/ui\/dispatch\/?$/, dispatchPage],
  [/^\/ui\/schedules\/?$/, schedulesPage],
  [/^\/ui\/locks\/?$/, locksPage],
  [/^\/ui\/users\/?$/, usersPage],
  [/^\/ui\/tokens\/?$/, tokensPage],
];

const sections = [
  ["/ui/", "Overview"],
  ["/ui/tasks", "Tasks"],
  ["/ui/cores", "Cores"],
  ["/ui/schedules", "Schedules"],
  ["/ui/locks", "Locks", "operator"],
  ["/ui/dispatch", "Dispatch", "operator"],
  ["/ui/tokens", "API tokens"],
  ["/ui/users", "Users", "admin"],
];

let leave = () => {};

export function navigate(path, replace = false) {
  if (replace) history.replaceState(null, "", path);
  else history.pushState(null, "", path);
  render();
}

async function render() {
  leave();
  leave = () => {};
  const path = location.pathname;
  if (!session.token) return signInPage();
  renderChrome(path);
  const match = routes.map(([pattern, page]) => [path.match(pattern), page]).find(([found]) => found);
  if (!match) {
    show(h("h1", {}, "Not found"), h("p", {}, link("/ui/", "Back to the overview")));
    return;
  }
  const [found, page] = match;
  const parameters = found.slice(1).map(decodeURIComponent);
  try {
    const cleanup = await page(new URLSearchParams(location.search), ...parameters);
    if (typeof cleanup === "function") leave = cleanup;
  } catch (error) {
    if (!session.token) return;
    show(h("h1", {}, "Something went wrong"), h("p", { class: "error" }, error.message));
  }
}

function renderChrome(path) {
  const nav = document.getElementById("nav");
  nav.hidden = false;
  nav.replaceChildren(...sections.filter(([, , role]) => !role || can(role)).map(([href, text]) => {
    const current = href === "/ui/" ? path === "/ui/" || path === "/ui" : path.startsWith(href);
    return link(href, text, { "aria-current": current ? "page" : null });
  }));
  const account = document.getElementById("account");
  account.hidden = false;
  const user = session.user || {};
  account.replaceChildren(
    h("span", { class: "muted" }, `${user.username || ""} (${user.role || ""})`),
    h("button", { type: "button", class: "secondary", id: "sign-out", onclick: () => { session.forget(); navigate("/ui/"); } }, "Sign out"));
}

document.addEventListener("click", (event) => {
  const anchor = event.target.closest && event.target.closest("a[href^='/ui']");
  if (!anchor || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
  event.preventDefault();
  navigate(anchor.getAttribute("href"));
});
window.addEventListener("popstate", render);
whenSignedOut(() => { notify("Your session ended; sign in again.", "error"); render(); });

// MARK: Sign-in

function signInPage() {
  document.getElementById("nav").hidden = true;
  document.getElementById("account").hidden = true;
  const error = h("p", { class: "error", role: "alert" });
  const form = h("form", { class: "signin card", id: "sign-in" },
    h("h1", {}, "Sign in"),
    h("label", {}, "Username", h("input", { name: "username", autocomplete: "username", required: true })),
    h("label", {}, "Password", h("input", { name: "password", type: "password", autocomplete: "current-password", required: true })),
    error,
    h("button", { type: "submit" }, "Sign in"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    try {
      await signIn(String(data.get("username")), String(data.get("password")));
      notify("");
      render();
    } catch (failure) {
      error.textContent = failure.status === 401 ? "Wrong username or password." : failure.message;
    }
  });
  show(form);
  form.querySelector("input").focus();
}

// MARK: Overview

async function overviewPage() {
  const body = h("div");
  show(h("h1", {}, "Overview"), body);
  const refresh = async () => {
    const [cores, health, stats, alerts] = await Promise.all([
      api("GET", "/cores"), api("GET", "/health").catch((e) => ({ status: e.message })), api("GET", "/stats/tasks"),
      api("GET", "/alerts"),
    ]);
    const totals = cores.cores.reduce((sum, core) => ({
      queued: sum.queued + core.queued, scheduled: sum.scheduled + core.scheduled, running: sum.running + core.running,
    }), { queued: 0, scheduled: 0, running: 0 });
    fill(body,
      h("div", { class: "card" },
        h("p", {}, `Server: ${health.status}. Queued ${totals.queued}, scheduled ${totals.scheduled}, running ${totals.running}.`)),
      h("h2", {}, "Open alerts"),
      h("div", { id: "alerts" }, table([
        ["Level", (alert) => h("strong", {}, alert.data.level)],
        ["Alert", (alert) => alert.data.alert],
        ["Message", (alert) => alert.data.message],
        ["Since", (alert) => time(alert.timestamp)],
      ], alerts.alerts, "No alert is firing.")),
      h("h2", {}, "Last hour"),
      h("div", { class: "charts", id: "charts" },
        chart("Completed per minute", stats.minutes.map((m) => m.completed), `${stats.completed} completed`, "good"),
        chart("Failed per minute", stats.minutes.map((m) => m.failed), `${stats.failed} failed`, "bad"),
        chart("p95 run time per minute (s)", stats.minutes.map((m) => m.p95_seconds || 0),
          stats.p95_seconds === null ? "no run times yet" : `p95 ${seconds(stats.p95_seconds)} over the hour`, "accent")),
      h("h2", {}, "Cores"),
      coreTable(cores.cores));
  };
  await refresh();
  // Redrawn on changes, and each half minute as the window moves on.
  const ticker = setInterval(() => refresh().catch(() => {}), 30000);
  const close = live({ filter: "task.*,core.*,system.alert" }, refresh, 1000);
  return () => { clearInterval(ticker); close(); };
}

/** A bar chart of `values` (one bar per minute, oldest first) as SVG, with its figures as text. */
function chart(title, values, summary, tone) {
  const svgNS = "http://www.w3.org/2000/svg";
  const width = 300;
  const height = 80;
  const most = Math.max(...values) || 1;
  const svg = document.createElementNS(svgNS, "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("role", "img");
  svg.setAttribute("class", `chart ${tone}`);
  const label = document.createElementNS(svgNS, "title");
  label.textContent = `${title}: ${summary}; the highest minute ${Math.max(0, ...values)}`;
  svg.append(label);
  const axis = document.createElementNS(svgNS, "line");
  for (const [name, value] of [["x1", 0], ["x2", width], ["y1", height - 0.5], ["y2", height - 0.5]]) axis.setAttribute(name, String(value));
  axis.setAttribute("class", "axis");
  svg.append(axis);
  const step = width / values.length;
  values.forEach((value, index) => {
    if (!value) return;
    const bar = document.createElementNS(svgNS, "rect");
    const barHeight = Math.max(1, (value / most) * (height - 2));
    bar.setAttribute("x", String(index * step));
    bar.setAttribute("y", String(height - barHeight));
    bar.setAttribute("width", String(Math.max(1, step - 1)));
    bar.setAttribute("height", String(barHeight));
    svg.append(bar);
  });
  return h("figure", { class: "card chart-card" }, h("figcaption", {}, h("strong", {}, title), " ", h("span", { class: "muted" }, summary)), svg);
}

function coreTable(cores) {
  return table([
    ["Core", (core) => link(`/ui/cores/${encodeURIComponent(core.core_id)}`, core.core_id)],
    ["Queued", (core) => core.queued, true],
    ["Scheduled", (core) => core.scheduled, true],
    ["Running", (core) => core.running, true],
    ["Paused", (core) => (core.paused ? "paused" : "no")],
    ["Max running", (core) => core.max_running ?? "—", true],
    ["Oldest queued", (core) => age(core.oldest_queued_age), true],
    ["Active workers", (core) => core.active_workers, true],
  ], cores, "No cores yet: dispatch a task to create one.");
}

// MARK: Tasks

const taskStatuses = ["", "scheduled", "queued", "running", "completed", "failed", "cancelled"];
const pageSize = 50;

async function tasksPage(search) {
  const filters = {
    status: search.get("status") || "", core_id: search.get("core_id") || "", priority: search.get("priority") || "",
    sort: search.get("sort") || "created_at", order: search.get("order") || "desc",
  };
  const offset = Math.max(0, Number(search.get("offset")) || 0);
  const form = h("form", { class: "filters", id: "task-filters", role: "search" },
    h("label", {}, "Status", h("select", { name: "status" }, taskStatuses.map((value) =>
      h("option", { value, selected: value === filters.status }, value || "any")))),
    h("label", {}, "Core", h("input", { name: "core_id", value: filters.core_id, size: 14 })),
    h("label", {}, "Priority", h("select", { name: "priority" }, ["", 1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map((value) =>
      h("option", { value, selected: String(value) === filters.priority }, value || "any")))),
    h("label", {}, "Sort", h("select", { name: "sort" }, ["created_at", "updated_at", "priority"].map((value) =>
      h("option", { value, selected: value === filters.sort }, value)))),
    h("label", {}, "Order", h("select", { name: "order" }, ["desc", "asc"].map((value) =>
      h("option", { value, selected: value === filters.order }, value)))),
    h("button", { type: "submit" }, "Apply"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const data = Object.fromEntries(new FormData(form));
    navigate(`/ui/tasks${query(data)}`);
  });
  const find = h("form", { class: "filters", id: "task-find", role: "search" },
    h("label", {}, "Task id", h("input", { name: "task_id", size: 30, required: true })),
    h("button", { type: "submit", class: "secondary" }, "Open"));
  find.addEventListener("submit", (event) => {
    event.preventDefault();
    navigate(`/ui/tasks/${encodeURIComponent(new FormData(find).get("task_id").trim())}`);
  });
  const results = h("div", { id: "task-results", "aria-live": "polite" });
  show(h("h1", {}, "Tasks"), form, find, can("operator") ? bulkActions(filters) : null, results);
  const refresh = async () => {
    const list = await api("GET", `/tasks${query({ ...filters, limit: pageSize, offset })}`);
    const pageQuery = (start) => `/ui/tasks${query({ ...filters, offset: start || "" })}`;
    results.replaceChildren(
      h("p", { class: "muted" }, `${list.total_tasks} tasks`),
      table([
        ["Task", (task) => link(`/ui/tasks/${encodeURIComponent(task.task_id)}`, task.task_id)],
        ["Core", (task) => task.core_id],
        ["Status", (task) => status(task.status)],
        ["Priority", (task) => task.priority, true],
        ["Created", (task) => time(task.created_at)],
        ["Updated", (task) => time(task.updated_at)],
        ["Progress", (task) => (task.progress === undefined || task.progress === null ? "—" : `${task.progress}%`), true],
      ], list.tasks, "No task matches."),
      h("div", { class: "pager" },
        offset > 0 ? link(pageQuery(Math.max(0, offset - pageSize)), "← Newer page") : null,
        h("span", { class: "muted" }, list.tasks.length ? `${offset + 1}–${offset + list.tasks.length}` : ""),
        list.pagination.has_more ? link(pageQuery(offset + pageSize), "Older page →") : null));
  };
  await refresh();
  return live({ filter: "task.*", core_id: filters.core_id }, refresh, 500);
}

/**
 * Cancel or retry every task the list's filters match: a dry run first, whose count is shown
 * with a button to confirm.
 */
function bulkActions(filters) {
  const filter = {};
  if (filters.status) filter.status = filters.status;
  if (filters.core_id) filter.core_id = filters.core_id;
  if (filters.priority) filter.priority = Number(filters.priority);
  const box = h("div", { class: "actions", id: "bulk" });
  const start = () => fill(box,
    h("button", { type: "button", class: "secondary", id: "bulk-cancel", onclick: () => check("cancel") }, "Cancel matching…"),
    h("button", { type: "button", class: "secondary", id: "bulk-retry", onclick: () => check("retry") }, "Retry matching…"));
  const check = async (action) => {
    const preview = await attempt(() => api("POST", `/tasks/${action}`, { ...filter, dry_run: true }));
    if (!preview) return;
    const applies = preview.matched - preview.skipped;
    fill(box,
      h("span", { id: "bulk-count" }, `${preview.matched} tasks match; ${applies} would be ${action === "cancel" ? "cancelled" : "retried"}, ${preview.skipped} skipped.`),
      h("button", { type: "button", class: action === "cancel" ? "danger" : "", id: "bulk-confirm", disabled: applies === 0, onclick: async () => {
        const done = await attempt(() => api("POST", `/tasks/${action}`, { ...filter, dry_run: false }));
        if (done) notify(`${done.cancelled ?? done.retried} tasks ${action === "cancel" ? "cancelled" : "retried"}.`);
        start();
      } }, action === "cancel" ? "Cancel them" : "Retry them"),
      h("button", { type: "button", class: "secondary", onclick: start }, "Back"));
  };
  start();
  return box;
}

// MARK: One task

async function taskPage(_, taskID) {
  const path = `/tasks/${encodeURIComponent(taskID)}`;
  let task;
  try {
    task = await api("GET", path);
  } catch (error) {
    if (error.status === 404) {
      show(h("h1", {}, "No such task"), h("p", {}, `There is no task ${taskID}.`), link("/ui/tasks", "All tasks"));
      return undefined;
    }
    throw error;
  }
  const fields = h("div", { id: "task-fields" });
  const actions = h("div", { class: "actions", id: "task-actions" });
  const timeline = h("ol", { class: "timeline", id: "timeline" });
  show(h("h1", {}, "Task ", h("code", {}, taskID)), actions, fields, h("h2", {}, "Timeline"), timeline);
  const seen = new Set();
  const drawTask = () => {
    fill(fields,
      fieldList([
        ["Status", status(task.status)], ["Core", link(`/ui/cores/${encodeURIComponent(task.core_id)}`, task.core_id)],
        ["Priority", task.priority], ["Attempts", `${task.attempts} of ${task.max_attempts}`],
        ["Progress", task.progress === null || task.progress === undefined ? "—" : h("progress", { max: 100, value: task.progress }, `${task.progress}%`)],
        ["Worker", task.worker_id || "—"], ["Created", time(task.created_at)], ["Updated", time(task.updated_at)],
        ["Run at", time(task.run_at)], ["Started", time(task.started_at)], ["Completed", time(task.completed_at)],
        ["Duration", task.duration === null || task.duration === undefined ? "—" : seconds(task.duration)],
        ["Timeout", `${task.timeout} s`], ["Stay", task.stay ? "yes" : "no"],
      ]),
      h("h2", {}, "Metadata"), json(task.metadata),
      task.result !== undefined && task.result !== null ? [h("h2", {}, "Result"), json(task.result)] : null,
      task.error !== undefined && task.error !== null ? [h("h2", {}, "Error"), json(task.error)] : null);
    actions.replaceChildren(...taskActions(task, path));
  };
  const addEvent = (event) => {
    if (seen.has(event.event_id)) return;
    seen.add(event.event_id);
    const data = event.data || {};
    const kind = event.event_type.split(".").pop();
    const progress = typeof data.progress === "number" ? h("progress", { max: 100, value: data.progress }, `${data.progress}%`) : null;
    // A callback attempt names its answer; an attempt that got none (refused, timed out) says so.
    const answer = event.event_type.startsWith("webhook.") && "status_code" in data
      ? (data.status_code === null ? "no answer" : `HTTP ${data.status_code}`) : null;
    timeline.append(h("li", { class: kind },
      h("div", {}, time(event.timestamp), " ", h("strong", {}, event.event_type), " ", progress, answer),
      Object.keys(data).length ? json(data) : null));
  };
  drawTask();
  let lastEventID = "";
  for (let offset = 0; ; offset += 1000) {
    const page = await api("GET", `/jobs/${encodeURIComponent(taskID)}/events${query({ limit: 1000, offset })}`);
    page.events.forEach(addEvent);
    if (page.events.length) lastEventID = page.events[page.events.length - 1].event_id;
    if (page.events.length < 1000) break;
  }
  const refresh = debounce(async () => {
    try { task = await api("GET", path); drawTask(); } catch { /* gone (pruned): keep what is shown */ }
  }, 300);
  // The stream starts after the last event read, so none written meanwhile is missed.
  return subscribe({ task_id: taskID, last_event_id: lastEventID }, (event) => { addEvent(event); refresh(); }, refresh);
}

function taskActions(task, path) {
  if (!can("operator")) return [];
  const buttons = [];
  if (["queued", "scheduled", "running"].includes(task.status)) {
    buttons.push(h("button", { type: "button", class: "danger", id: "cancel-task", onclick: () =>
      attempt(() => api("PUT", `/jobs/${encodeURIComponent(task.task_id)}/status`, { status: "cancelled" }), "Cancelled.") }, "Cancel"));
  }
  if (["failed", "cancelled"].includes(task.status)) {
    buttons.push(h("button", { type: "button", id: "retry-task", onclick: () =>
      attempt(() => api("POST", `${path}/retry`), "Back in the queue.") }, "Retry"));
  }
  buttons.push(h("button", { type: "button", class: "secondary", id: "copy-task", onclick: async () => {
    const copy = await attempt(() => api("POST", "/dispatch", {
      core_id: task.core_id, priority: task.priority, timeout: task.timeout, stay: task.stay,
      max_attempts: task.max_attempts, metadata: task.metadata,
    }));
    if (copy) navigate(`/ui/tasks/${encodeURIComponent(copy.task_id)}`);
  } }, "Dispatch a copy"));
  return buttons;
}

// MARK: Cores

async function coresPage() {
  const body = h("div");
  show(h("h1", {}, "Cores"), body);
  const refresh = async () => body.replaceChildren(coreTable((await api("GET", "/cores")).cores));
  await refresh();
  return live({ filter: "task.*,core.*" }, refresh, 1000);
}

async function corePage(_, coreID) {
  const path = `/cores/${encodeURIComponent(coreID)}`;
  const body = h("div");
  show(h("h1", {}, "Core ", h("code", {}, coreID)), body);
  const refresh = async () => {
    const core = await api("GET", path);
    const controls = [];
    if (can("operator")) {
      controls.push(h("button", { type: "button", id: "pause-core", onclick: () =>
        attempt(() => api("PATCH", path, { paused: !core.paused }), core.paused ? "Resumed." : "Paused.").then(refresh) },
      core.paused ? "Resume" : "Pause"));
      const limit = h("form", { class: "filters", id: "max-running" },
        h("label", {}, "Max running (empty: no cap)", h("input", { name: "max_running", type: "number", min: 1, value: core.max_running ?? "" })),
        h("button", { type: "submit", class: "secondary" }, "Save"));
      limit.addEventListener("submit", (event) => {
        event.preventDefault();
        const value = new FormData(limit).get("max_running");
        attempt(() => api("PATCH", path, { max_running: value === "" ? null : Number(value) }), "Saved.").then(refresh);
      });
      controls.push(limit);
    }
    body.replaceChildren(
      fieldList([
        ["State", core.paused ? "paused: claims get nothing" : "running"],
        ["Queued", core.queued], ["Scheduled", core.scheduled], ["Running", core.running],
        ["Max running", core.max_running ?? "no cap"], ["Active workers", core.active_workers],
        ["Oldest queued", age(core.oldest_queued_age)],
      ]),
      h("div", { class: "actions" }, controls),
      h("p", {}, link(`/ui/tasks${query({ core_id: coreID })}`, "This core's tasks")));
  };
  await refresh();
  return live({ core_id: coreID }, refresh, 1000);
}

// MARK: Dispatch

function dispatchPage() {
  if (!can("operator")) {
    show(h("h1", {}, "Dispatch"), h("p", {}, "Your role cannot dispatch tasks."));
    return;
  }
  const error = h("p", { class: "error", role: "alert", id: "dispatch-error" });
  const form = h("form", { class: "card", id: "dispatch" },
    h("div", { class: "filters" },
      h("label", {}, "Core", h("input", { name: "core_id", required: true, pattern: "[A-Za-z0-9_.:\\-]{1,128}" })),
      h("label", {}, "Priority (1-10)", h("input", { name: "priority", type: "number", min: 1, max: 10, value: 1 })),
      h("label", {}, "Timeout (s)", h("input", { name: "timeout", type: "number", min: 1, max: 86400, value: 300 })),
      h("label", {}, "Max attempts", h("input", { name: "max_attempts", type: "number", min: 1, max: 100, value: 3 })),
      h("label", {}, "Delay (s)", h("input", { name: "delay", type: "number", min: 0 }))),
    h("label", {}, "Metadata (a JSON object)", h("textarea", { name: "metadata", spellcheck: "false" }, "{}")),
    error,
    h("button", { type: "submit" }, "Dispatch"));
  whenSubmitted(form, error, async (data) => {
    const body = { core_id: String(data.get("core_id")), metadata: parseObject(String(data.get("metadata") || "{}")) };
    for (const name of ["priority", "timeout", "max_attempts", "delay"]) {
      if (data.get(name) !== "") body[name] = Number(data.get(name));
    }
    const task = await api("POST", "/dispatch", body);
    navigate(`/ui/tasks/${encodeURIComponent(task.task_id)}`);
  });
  show(h("h1", {}, "Dispatch a task"), form);
}

// MARK: Schedules

async function schedulesPage() {
  const list = h("div", { id: "schedule-list" });
  const parts = [h("h1", {}, "Schedules"), list];
  if (can("operator")) parts.push(h("h2", {}, "New schedule"), scheduleForm(() => refresh()));
  show(...parts);
  const refresh = async () => {
    const answer = await api("GET", "/schedules?limit=500");
    fill(list, table([
      ["Name", (schedule) => schedule.name],
      ["Core", (schedule) => link(`/ui/cores/${encodeURIComponent(schedule.core_id)}`, schedule.core_id)],
      ["When", (schedule) => (schedule.cron ? `cron ${schedule.cron} (${schedule.timezone})` : `every ${schedule.every}`)],
      ["Next run", (schedule) => (schedule.paused ? "paused" : time(schedule.next_run_at))],
      ["Last run", (schedule) => time(schedule.last_run_at)],
      ["Last task", (schedule) => (schedule.last_task_id ? link(`/ui/tasks/${encodeURIComponent(schedule.last_task_id)}`, schedule.last_task_id) : "—")],
      ["", (schedule) => (can("operator") ? h("button", { type: "button", class: "secondary", "data-schedule": schedule.name, onclick: () =>
        attempt(() => api("PATCH", `/schedules/${encodeURIComponent(schedule.schedule_id)}`, { paused: !schedule.paused }),
          schedule.paused ? "Resumed." : "Paused.").then(refresh) }, schedule.paused ? "Resume" : "Pause") : "")],
    ], answer.schedules, "No schedules."));
  };
  await refresh();
  return live({ filter: "task.created" }, refresh, 1000);
}

function scheduleForm(created) {
  const error = h("p", { class: "error", role: "alert", id: "schedule-error" });
  const form = h("form", { class: "card", id: "schedule" },
    h("div", { class: "filters" },
      h("label", {}, "Name", h("input", { name: "name", required: true })),
      h("label", {}, "Core", h("input", { name: "core_id", required: true })),
      h("label", {}, "Cron (5 fields)", h("input", { name: "cron", placeholder: "*/5 * * * *" })),
      h("label", {}, "or every", h("input", { name: "every", placeholder: "30s, 5m, 1h" })),
      h("label", {}, "Time zone", h("input", { name: "timezone", value: "UTC" }))),
    h("label", {}, "Task metadata (a JSON object)", h("textarea", { name: "metadata", spellcheck: "false" }, "{}")),
    error,
    h("button", { type: "submit" }, "Create"));
  whenSubmitted(form, error, async (data) => {
    const metadata = parseObject(String(data.get("metadata") || "{}"));
    const body = { name: String(data.get("name")), core_id: String(data.get("core_id")), task: { metadata } };
    for (const name of ["cron", "every", "timezone"]) if (data.get(name)) body[name] = String(data.get(name));
    await api("POST", "/schedules", body);
    form.reset();
    notify("Schedule created.");
    created();
  });
  return form;
}

/** The JSON object in `text`; throws with the reason when it is not one. */
function parseObject(text) {
  let value;
  try {
    value = JSON.parse(text);
  } catch (failure) {
    throw new Error(`Metadata is not JSON: ${failure.message}`);
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) throw new Error("Metadata must be a JSON object.");
  return value;
}

/** Runs `send` with the form's data when `form` is submitted; what it throws is shown in `error`. */
function whenSubmitted(form, error, send) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    try {
      await send(new FormData(form));
    } catch (failure) {
      error.textContent = failure.message;
    }
  });
}

// MARK: Locks

async function locksPage() {
  const body = h("div", { id: "lock-list" });
  show(h("h1", {}, "Locks"), body);
  let locks = [];
  const draw = () => fill(body, table([
    ["Resource", (lock) => lock.resource],
    ["Owner", (lock) => lock.owner],
    ["Priority", (lock) => lock.priority, true],
    ["Fencing token", (lock) => lock.fencing_token ?? "—", true],
    ["Remaining", (lock) => h("span", { class: "remaining" }, `${Math.max(0, Math.round(lock.remaining_ttl))} s`), true],
    ["Waiting", (lock) => lock.waiting, true],
    ["", (lock) => (can("admin") ? h("button", { type: "button", class: "danger", "data-resource": lock.resource, onclick: () =>
      attempt(() => api("DELETE", `/locks/${encodeURIComponent(lock.resource)}${query({ owner: lock.owner, force: true })}`), "Released.")
        .then(refresh) }, "Force release") : "")],
  ], locks, "No lock is held."));
  const refresh = async () => {
    const answer = await api("GET", "/locks");
    const waiting = (answer.queue_status && answer.queue_status.by_resource) || {};
    const loaded = performance.now();
    locks = answer.locks.map((lock) => ({ ...lock, waiting: waiting[lock.resource] || 0, loaded, initial: lock.remaining_ttl }));
    draw();
  };
  await refresh();
  // The remaining time counts down between refreshes.
  const ticker = setInterval(() => {
    for (const lock of locks) lock.remaining_ttl = lock.initial - (performance.now() - lock.loaded) / 1000;
    draw();
  }, 1000);
  const close = live({ filter: "lock.*" }, refresh, 300);
  return () => { clearInterval(ticker); close(); };
}

// MARK: Users and API tokens

async function usersPage() {
  if (!can("admin")) {
    show(h("h1", {}, "Users"), h("p", {}, "Only an admin sees the users."));
    return;
  }
  const list = h("div", { id: "user-list" });
  const error = h("p", { class: "error", role: "alert" });
  const form = h("form", { class: "card", id: "new-user" },
    h("div", { class: "filters" },
      h("label", {}, "Username", h("input", { name: "username", required: true, autocomplete: "off" })),
      h("label", {}, "Email", h("input", { name: "email", type: "email", required: true })),
      h("label", {}, "Password (8-72)", h("input", { name: "password", type: "password", required: true, minlength: 8, autocomplete: "new-password" })),
      h("label", {}, "Role", h("select", { name: "role" }, ["viewer", "operator", "system", "admin"].map((role) => h("option", { value: role }, role))))),
    error,
    h("button", { type: "submit" }, "Create user"));
  show(h("h1", {}, "Users"), list, h("h2", {}, "New user"), form);
  const refresh = async () => {
    const answer = await api("GET", "/users?limit=500");
    fill(list, table([
      ["User", (user) => user.username],
      ["Email", (user) => user.email],
      ["Role", (user) => user.role],
      ["Active", (user) => (user.is_active ? "yes" : "no")],
      ["Created", (user) => time(user.created_at)],
      ["", (user) => (user.user_id === (session.user || {}).user_id ? "you" : h("button", {
        type: "button", class: user.is_active ? "danger" : "secondary", "data-user": user.username, onclick: () =>
          attempt(() => api("PATCH", `/users/${encodeURIComponent(user.user_id)}`, { is_active: !user.is_active }),
            user.is_active ? "Deactivated." : "Activated.").then(refresh),
      }, user.is_active ? "Deactivate" : "Activate"))],
    ], answer.users));
  };
  whenSubmitted(form, error, async (data) => {
    await api("POST", "/users", Object.fromEntries(data));
    form.reset();
    notify("User created.");
    refresh();
  });
  await refresh();
}

async function tokensPage() {
  const list = h("div", { id: "token-list" });
  const shown = h("div", { id: "new-token", "aria-live": "polite" });
  const error = h("p", { class: "error", role: "alert" });
  const form = h("form", { class: "filters", id: "create-token" },
    h("label", {}, "Name", h("input", { name: "name", required: true })),
    h("label", {}, "Days valid (empty: no end)", h("input", { name: "days", type: "number", min: 1 })),
    h("button", { type: "submit" }, "Create token"));
  show(h("h1", {}, "API tokens"), list, h("h2", {}, "New token"), form, error, shown);
  const refresh = async () => {
    const answer = await api("GET", "/auth/tokens");
    fill(list, table([
      ["Name", (token) => token.name],
      ["Prefix", (token) => h("code", {}, token.prefix)],
      ["Role", (token) => token.role],
      ["Created", (token) => time(token.created_at)],
      ["Expires", (token) => time(token.expires_at)],
      ["Last used", (token) => time(token.last_used_at)],
      ["", (token) => h("button", { type: "button", class: "danger", "data-token": token.name, onclick: () =>
        attempt(() => api("DELETE", `/auth/tokens/${encodeURIComponent(token.token_id)}`), "Revoked.").then(refresh) }, "Revoke")],
    ], answer.tokens, "No API tokens."));
  };
  whenSubmitted(form, error, async (data) => {
    const body = { name: String(data.get("name")) };
    if (data.get("days")) body.expires_in = Number(data.get("days")) * 86400;
    const created = await api("POST", "/auth/tokens", body);
    form.reset();
    fill(shown, h("div", { class: "card" },
      h("p", {}, "The token, shown this once: copy it now."),
      h("pre", { id: "token-secret" }, created.token)));
    refresh();
  });
  await refresh();
}

render();
