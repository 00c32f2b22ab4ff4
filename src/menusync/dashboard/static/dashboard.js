// The menusync dashboard: one ES module, no framework, no build step.
//
// Everything shown comes from the public REST API (/api/v1) and the Socket.IO namespace
// /sync-progress, called with the operator's token, which lives in this tab's sessionStorage only.
// Text from the API is only ever inserted as text nodes (textContent, append): never as HTML.
//
// Live updates: every socket of a company receives every event of the company, so the page needs
// no subscriptions. After a reconnect it reloads the active syncs and the history page instead of
// replaying, since a page of rows is cheaper than a replay of every sync's events.

const ROOT = new URL("../../", import.meta.url); // this file is <root>/dashboard/static/dashboard.js
const TOKEN_KEY = "menusync.token";
const HISTORY_LIMIT = 20;
const ACTIVE_SHOWN = 50;
const EVENTS_KEPT = 50;
const BATCHES_KEPT = 5;
const FINISHED_ROW_LINGERS_MS = 8000;
const ACTIVE = new Set(["pending", "in_progress", "awaiting_confirmation", "scheduled_retry"]);
const TERMINAL = new Set(["completed", "failed", "cancelled"]);
const SYNC_EVENTS = [
  "sync-started",
  "sync-progress",
  "sync-retry-scheduled",
  "sync-completed",
  "sync-failed",
  "sync-cancelled",
];
const BATCH_EVENTS = ["batch-sync-started", "batch-sync-progress", "batch-sync-completed"];

// ---- state ---------------------------------------------------------------------------------

const state = {
  token: null,
  claims: null,
  generation: 0, // bumped at every sign-in and sign-out: answers to an older session are dropped
  socket: null,
  everConnected: false,
  connections: [],
  menus: new Map(), // menu id -> MenuSummary
  syncs: new Map(), // sync id -> SyncStatus, patched by events
  lastEventId: new Map(), // sync id -> id of the last event applied to it
  batches: new Map(), // batch id -> what the batch events said
  historyPage: 1,
  pagination: null, // of the history page shown
  timers: new Set(),
  refreshes: new Map(),
};

const $ = (id) => document.getElementById(id);

// ---- DOM helpers (text only) ---------------------------------------------------------------

function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "className") element.className = value;
    else if (name === "onclick") element.addEventListener("click", value);
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : String(child)); // strings become text nodes
  }
  return element;
}

function slug(value) {
  return String(value ?? "unknown")
    .toLowerCase()
    .replace(/[^a-z0-9_-]/g, "");
}

function badge(value, label = value) {
  return h(
    "span",
    { className: `badge badge-${slug(value)}` },
    String(label ?? "—").replaceAll("_", " "),
  );
}

const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });
const clockFormat = new Intl.DateTimeFormat(undefined, { timeStyle: "medium" });

function when(iso, format = dateFormat) {
  if (!iso) return "—";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  return h("time", { datetime: date.toISOString() }, format.format(date));
}

function seconds(ms) {
  return ms === null || ms === undefined ? "" : `${(ms / 1000).toFixed(1)} s`;
}

function shortId(id) {
  return String(id ?? "").slice(0, 8);
}

// A table row: a header cell, then data cells (a <td> as is, anything else inside one).
function row(header, ...cells) {
  const data = cells.map((cell) =>
    cell instanceof HTMLTableCellElement ? cell : h("td", {}, cell),
  );
  return h("tr", {}, h("th", { scope: "row" }, header), data);
}

function button(label, description, onClick, className = null) {
  const attributes = { type: "button", className, "aria-label": description };
  return h("button", { ...attributes, onclick: (event) => onClick(event.currentTarget) }, label);
}

function emptyRow(columns, text) {
  return h("tr", { className: "empty" }, h("td", { colspan: columns }, text));
}

function later(ms, action) {
  const timer = setTimeout(() => {
    state.timers.delete(timer);
    action();
  }, ms);
  state.timers.add(timer);
}

function refreshSoon(name, loader, delay = 1500) {
  if (state.refreshes.has(name)) return;
  const timer = setTimeout(() => {
    state.refreshes.delete(name);
    loader();
  }, delay);
  state.refreshes.set(name, timer);
}

// ---- notices -------------------------------------------------------------------------------

// An error, with the API's issues listed (each by platform, or else by field path).
function showNotice(text, issues = []) {
  const items = issues.map((issue) => {
    const where = issue.platformType ?? issue.path;
    return h("li", {}, where ? `${where}: ` : "", issue.message ?? "");
  });
  $("notice-body").replaceChildren(h("p", {}, text), items.length ? h("ul", {}, items) : "");
  $("notice").hidden = false;
}

function hideNotice() {
  $("notice").hidden = true;
  $("notice-body").replaceChildren();
}

function showMessage(text) {
  $("message").textContent = text;
  $("message").hidden = !text;
}

// ---- the API -------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, code, message, details = {}, retryAfter = null) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
    this.retryAfter = retryAfter;
  }
}

class StaleAnswer extends Error {}

async function api(method, path, body) {
  if (!state.token) throw new StaleAnswer(); // signed out meanwhile
  const generation = state.generation;
  const headers = { Accept: "application/json", Authorization: `Bearer ${state.token}` };
  const init = { method, headers, cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(new URL(`api/v1/${path}`, ROOT), init);
  } catch {
    throw new ApiError(0, "network_error", "The server could not be reached");
  }
  let payload = null;
  try {
    payload = await response.json();
  } catch {
    payload = null;
  }
  if (generation !== state.generation) throw new StaleAnswer();
  if (!response.ok || payload?.success === false) {
    const error = payload?.error ?? {};
    throw new ApiError(
      response.status,
      error.code ?? "http_error",
      error.message ?? `HTTP ${response.status} ${response.statusText}`.trim(),
      error.details ?? {},
      response.headers.get("Retry-After"),
    );
  }
  return payload;
}

function reportError(error, what) {
  if (error instanceof StaleAnswer) return;
  if (!(error instanceof ApiError)) {
    console.error(error);
    showNotice(`${what} failed: ${error?.message ?? error}`);
    return;
  }
  const message = error.message.replace(/\.*$/, "."); // one full stop, whatever the server wrote
  switch (error.status) {
    case 0:
      showNotice(`${what} failed: ${message} Is menusync running?`);
      return;
    case 401:
      tokenRefused(error.message, error.code);
      return;
    case 403:
      showNotice(`${what}: not allowed for your role. ${message}`);
      return;
    case 429: {
      const wait = Number.parseInt(error.retryAfter ?? error.details?.retryAfter ?? "", 10);
      const later = Number.isFinite(wait) ? `in ${wait} s` : "in a moment";
      showNotice(`${what}: too many requests. ${message} Try again ${later}.`);
      return;
    }
    default:
      showNotice(
        `${what} failed: ${message}`,
        Array.isArray(error.details?.issues) ? error.details.issues : [],
      );
  }
}

// ---- token ---------------------------------------------------------------------------------

function decodeClaims(token) {
  const parts = token.split(".");
  if (parts.length !== 3) return null;
  try {
    const base64 = parts[1].replace(/-/g, "+").replace(/_/g, "/");
    const binary = atob(base64.padEnd(Math.ceil(base64.length / 4) * 4, "="));
    const claims = JSON.parse(
      new TextDecoder().decode(Uint8Array.from(binary, (c) => c.charCodeAt(0))),
    );
    return claims && typeof claims === "object" ? claims : null;
  } catch {
    return null;
  }
}

function signIn(raw, { remember = true } = {}) {
  const token = raw.trim().replace(/^Bearer\s+/i, "");
  const claims = decodeClaims(token);
  if (!claims) {
    sessionStorage.removeItem(TOKEN_KEY);
    showSignIn("That is not a JWT: expected three base64url parts separated by dots.");
    return;
  }
  const expiresAt = typeof claims.exp === "number" ? claims.exp * 1000 : null;
  if (expiresAt !== null && expiresAt <= Date.now()) {
    sessionStorage.removeItem(TOKEN_KEY);
    showSignIn(`This token expired at ${dateFormat.format(new Date(expiresAt))}. Paste a new one.`);
    return;
  }
  state.generation += 1;
  state.token = token;
  state.claims = claims;
  if (remember) sessionStorage.setItem(TOKEN_KEY, token);
  if (expiresAt !== null) {
    // setTimeout holds 32 bits of milliseconds: a token valid for longer than ~24 days is
    // checked again when the timer fires.
    const check = () => {
      if (Date.now() >= expiresAt) tokenRefused("Token has expired", "token_expired");
      else later(Math.min(expiresAt - Date.now(), 2 ** 31 - 1), check);
    };
    later(Math.min(expiresAt - Date.now(), 2 ** 31 - 1), check);
  }
  showWorkspace();
  connectLive();
  loadEverything();
}

function signOut(reason = "") {
  state.generation += 1;
  if (state.socket) {
    state.socket.off();
    state.socket.disconnect();
  }
  for (const timer of state.timers) clearTimeout(timer);
  for (const timer of state.refreshes.values()) clearTimeout(timer);
  Object.assign(state, {
    token: null,
    claims: null,
    socket: null,
    everConnected: false,
    connections: [],
    historyPage: 1,
    pagination: null,
  });
  state.timers.clear();
  state.refreshes.clear();
  state.menus.clear();
  state.syncs.clear();
  state.lastEventId.clear();
  state.batches.clear();
  activeTable.clear();
  historyTable.clear();
  for (const id of ["health-rows", "connection-rows", "menu-rows", "batches", "events"]) {
    $(id).replaceChildren();
  }
  $("health-summary").replaceChildren();
  $("sync-targets").textContent = "";
  $("history-page").replaceChildren();
  sessionStorage.removeItem(TOKEN_KEY);
  hideNotice();
  showMessage("");
  showSignIn(reason);
}

function tokenRefused(message, code) {
  const reason =
    code === "token_expired"
      ? "Your token has expired. Paste a new one (make run prints one; menusync token makes one)."
      : `The server refused this token: ${message}. Paste a valid one.`;
  signOut(reason);
}

function showSignIn(error = "") {
  $("workspace").hidden = true;
  $("sign-out").hidden = true;
  $("identity").hidden = true;
  $("live-state").hidden = true;
  $("sign-in").hidden = false;
  $("token-error").textContent = error;
  $("token-error").hidden = !error;
  $("token").setAttribute("aria-invalid", error ? "true" : "false");
  $("token").focus();
}

function showWorkspace() {
  const { sub, role, companyId, exp } = state.claims;
  const expiry =
    typeof exp === "number" ? ` · token expires ${dateFormat.format(new Date(exp * 1000))}` : "";
  $("identity").textContent =
    `${sub ?? "?"} (${role ?? "no role"}) at ${companyId ?? "no company"}${expiry}`;
  $("identity").hidden = false;
  $("sign-out").hidden = false;
  $("sign-in").hidden = true;
  $("token").value = "";
  $("token-error").hidden = true;
  $("workspace").hidden = false;
  renderBatches();
}

// ---- loading -------------------------------------------------------------------------------

function loadEverything() {
  loadHealth();
  loadConnections();
  // Menu names label the sync rows, so the syncs come after the menus (or their failure).
  const generation = state.generation;
  loadMenus().finally(() => {
    if (generation !== state.generation) return;
    loadActive();
    loadHistory();
  });
}

async function loadHealth() {
  try {
    const { data } = await api("GET", "platform-sync/health");
    renderHealth(data);
  } catch (error) {
    reportError(error, "Loading platform health");
  }
}

async function loadConnections() {
  try {
    const { data } = await api("GET", "platform-sync/connections");
    state.connections = data;
    renderConnections();
  } catch (error) {
    reportError(error, "Loading connections");
  }
}

async function loadMenus() {
  try {
    const { data, pagination } = await api("GET", "menus?limit=100");
    state.menus = new Map(data.map((menu) => [menu.id, menu]));
    renderMenus(pagination);
    activeTable.refreshAll();
    historyTable.refreshAll();
  } catch (error) {
    reportError(error, "Loading menus");
  }
}

async function loadActive() {
  try {
    const { data } = await api("GET", "platform-sync/active");
    for (const sync of data) remember(sync);
    activeTable.show(data.slice(0, ACTIVE_SHOWN).map((sync) => sync.syncId));
    $("active-more").textContent = `${data.length - ACTIVE_SHOWN} more not shown.`;
    $("active-more").hidden = data.length <= ACTIVE_SHOWN;
  } catch (error) {
    reportError(error, "Loading active syncs");
  }
}

async function loadHistory(page = state.historyPage) {
  try {
    const query = new URLSearchParams({
      page,
      limit: HISTORY_LIMIT,
      sortBy: "createdAt",
      sortOrder: "desc",
    });
    const { data, pagination } = await api("GET", `platform-sync/history?${query}`);
    state.historyPage = pagination.page;
    state.pagination = pagination;
    for (const sync of data) remember(sync);
    historyTable.show(data.map((sync) => sync.syncId));
    renderPager();
  } catch (error) {
    reportError(error, "Loading the history");
  }
}

function remember(sync) {
  state.syncs.set(sync.syncId, { ...state.syncs.get(sync.syncId), ...sync });
}

// ---- health, connections, menus ------------------------------------------------------------

function renderHealth(data) {
  $("health-summary").replaceChildren(
    badge(data.status),
    ` Score ${data.healthScore}/100 · ${data.activeSyncs} active · ${data.recentSyncCount} syncs and ${data.failedSyncsLast24h} failures in 24 h · platform calls ${data.avgResponseTime} ms on average · checked `,
    when(data.checkedAt, clockFormat),
  );
  const platforms = Object.entries(data.platformStatus ?? {}).sort(([a], [b]) =>
    a.localeCompare(b),
  );
  $("health-rows").replaceChildren(
    ...(platforms.length
      ? platforms.map(([platform, p]) =>
          row(
            platform,
            badge(p.status),
            badge(p.circuitState),
            p.successRate === null ? "—" : `${p.successRate} %`,
            `${p.successful} of ${p.total} completed, ${p.failed} failed`,
            p.rateLimit ? budgetText(p.rateLimit) : "—",
          ),
        )
      : [emptyRow(6, "No platform is registered.")]),
  );
}

function budgetText({ used, budget }) {
  return `${used} of ${budget.count} per ${Math.round(budget.periodSeconds)} s booked`;
}

function enabledPlatforms() {
  return state.connections.filter((c) => c.isEnabled).map((c) => c.platformType);
}

function renderConnections() {
  const rows = state.connections.map(({ platformType, ...connection }) =>
    row(
      platformType,
      connection.storeKey,
      connection.isEnabled ? "yes" : "no",
      badge(connection.status),
      when(connection.lastTestedAt),
      h("td", { className: "error-text" }, connection.lastError ?? ""),
      h(
        "td",
        { className: "actions" },
        button("Test", `Test the ${platformType} connection`, (target) =>
          testConnection(platformType, target),
        ),
      ),
    ),
  );
  $("connection-rows").replaceChildren(
    ...(rows.length
      ? rows
      : [
          emptyRow(
            7,
            "No connections yet: add one with PUT /api/v1/platform-sync/connections/{platform}.",
          ),
        ]),
  );
  const platforms = enabledPlatforms();
  $("sync-targets").textContent = platforms.length
    ? `"Sync" queues one sync per enabled connection: ${platforms.join(", ")}.`
    : "No enabled connection: a sync has nowhere to go yet.";
}

function renderMenus(pagination) {
  const rows = [...state.menus.values()].map((menu) =>
    row(
      [menu.name, menu.branchId ? h("span", { className: "sub" }, ` branch ${menu.branchId}`) : ""],
      menu.version,
      menu.itemCount,
      when(menu.updatedAt),
      h(
        "td",
        { className: "actions" },
        button(
          "Sync to all connected platforms",
          `Sync ${menu.name} to all connected platforms`,
          (target) => syncEverywhere(menu, target),
          "primary",
        ),
      ),
    ),
  );
  $("menu-rows").replaceChildren(
    ...(rows.length ? rows : [emptyRow(5, "No menus yet: create one with POST /api/v1/menus.")]),
  );
  $("menus-more").textContent = `Showing ${rows.length} of ${pagination.total} menus.`;
  $("menus-more").hidden = pagination.total <= rows.length;
}

async function testConnection(platform, button) {
  button.disabled = true;
  button.textContent = "Testing…";
  try {
    const { data } = await api(
      "POST",
      `platform-sync/connections/${encodeURIComponent(platform)}/test`,
    );
    if (data.ok) showMessage(`${platform}: the connection works. ${data.message}`);
    else showNotice(`${platform}: the connection test failed. ${data.message}`);
  } catch (error) {
    reportError(error, `Testing the ${platform} connection`);
  } finally {
    button.disabled = false;
    button.textContent = "Test";
  }
  loadConnections();
}

async function syncEverywhere(menu, button) {
  const platforms = enabledPlatforms();
  if (!platforms.length) {
    showNotice("No enabled platform connection to sync to.");
    return;
  }
  button.disabled = true;
  try {
    const answer = await api("POST", "platform-sync/batch", {
      platformMenuId: menu.id,
      platforms: platforms.map((platformType) => ({ platformType })),
      forceSync: $("force-sync").checked,
    });
    hideNotice();
    const operations = answer.syncOperations
      .map((op) => `${op.platformType} ${op.status}`)
      .join(", ");
    showMessage(
      `${menu.name}: ${answer.message} (${operations}); about ${answer.estimatedTotalDuration} s.`,
    );
    if (!state.socket?.connected) {
      loadActive();
      loadHistory(1);
    }
  } catch (error) {
    reportError(error, `Syncing ${menu.name}`);
  } finally {
    button.disabled = false;
  }
}

// ---- syncs: two tables over one store --------------------------------------------------------

const SYNC_COLUMNS = 8;

class SyncTable {
  constructor(tbody, emptyText) {
    this.tbody = tbody;
    this.emptyText = emptyText;
    this.rows = new Map(); // sync id -> <tr>
  }

  show(ids) {
    const rows = new Map();
    for (const id of ids) rows.set(id, this.rows.get(id) ?? this.build(id));
    this.rows = rows;
    this.refreshAll();
    this.tbody.replaceChildren(
      ...(rows.size ? rows.values() : [emptyRow(SYNC_COLUMNS, this.emptyText)]),
    );
  }

  prepend(id, limit = Infinity) {
    if (this.rows.has(id)) return;
    const ids = [id, ...this.rows.keys()].slice(0, limit);
    this.show(ids);
  }

  remove(id) {
    if (!this.rows.has(id)) return;
    this.show([...this.rows.keys()].filter((other) => other !== id));
  }

  clear() {
    this.rows.clear();
    this.tbody.replaceChildren();
  }

  refresh(id) {
    const row = this.rows.get(id);
    if (row) fillSyncRow(row, state.syncs.get(id));
  }

  refreshAll() {
    for (const id of this.rows.keys()) this.refresh(id);
  }

  build(id) {
    const row = h("tr", {});
    for (let i = 0; i < SYNC_COLUMNS; i += 1)
      row.append(h(i === 1 ? "th" : "td", i === 1 ? { scope: "row" } : {}));
    row.dataset.syncId = id;
    return row;
  }
}

const activeTable = new SyncTable($("active-rows"), "Nothing in flight.");
const historyTable = new SyncTable($("history-rows"), "No syncs yet.");

function menuLabel(sync) {
  if (sync.kind && sync.kind !== "menu") return sync.kind.replaceAll("_", " ");
  const menu = state.menus.get(sync.platformMenuId);
  return menu ? menu.name : shortId(sync.platformMenuId) || "—";
}

function fillSyncRow(row, sync) {
  if (!sync) return;
  const [requested, platform, menu, status, progress, details, attempt, actions] = row.cells;
  requested.replaceChildren(when(sync.createdAt));
  platform.textContent = sync.platformType ?? "";
  menu.textContent = menuLabel(sync);
  status.replaceChildren(
    badge(sync.status),
    sync.unchanged ? h("span", { className: "sub" }, " unchanged") : "",
  );
  const percent = Math.max(0, Math.min(100, Number(sync.progress) || 0));
  progress.replaceChildren(
    h("progress", { max: 100, value: percent, "aria-label": `${sync.platformType} sync progress` }),
    h("span", { className: "sub" }, ` ${percent} %`),
  );
  const lines = [];
  if (sync.stage && sync.stage !== sync.status)
    lines.push(h("span", { className: "stage" }, sync.stage.replaceAll("_", " ")));
  if (sync.message && sync.message !== sync.error?.message) {
    lines.push(h("span", {}, sync.message));
  }
  if (sync.error?.message)
    lines.push(
      h(
        "span",
        { className: "error-text" },
        `${sync.error.code ?? "error"}: ${sync.error.message}`,
      ),
    );
  if (sync.status === "scheduled_retry" && sync.nextRetryAt)
    lines.push(h("span", {}, "next attempt ", when(sync.nextRetryAt, clockFormat)));
  if (sync.duration) lines.push(h("span", { className: "sub" }, `took ${seconds(sync.duration)}`));
  details.replaceChildren(...lines);
  attempt.textContent = sync.attempt
    ? `${sync.attempt}${sync.maxAttempts ? ` of ${sync.maxAttempts}` : ""}`
    : "";
  // Rebuilt only when the available action changes, so a focused button survives progress events.
  const action = ACTIVE.has(sync.status) ? "cancel" : sync.status === "failed" ? "retry" : "";
  if (row.dataset.action !== action) {
    row.dataset.action = action;
    actions.className = "actions";
    const which = `the ${sync.platformType} sync ${shortId(sync.syncId)}`;
    actions.replaceChildren(
      action === "cancel"
        ? button("Cancel", `Cancel ${which}`, (target) => cancelSync(sync.syncId, target))
        : action === "retry"
          ? button("Retry", `Retry ${which}`, (target) => retrySync(sync.syncId, target))
          : "",
    );
  }
}

function renderPager() {
  const pagination = state.pagination;
  if (!pagination) return;
  const pages = Math.max(1, pagination.totalPages);
  $("history-page").textContent = `Page ${pagination.page} of ${pages} (${pagination.total} syncs)`;
  $("history-newer").disabled = pagination.page <= 1;
  $("history-older").disabled = pagination.page >= pages;
}

function refreshSync(id) {
  activeTable.refresh(id);
  historyTable.refresh(id);
}

async function cancelSync(id, button) {
  button.disabled = true;
  try {
    const answer = await api("DELETE", `platform-sync/cancel/${encodeURIComponent(id)}`);
    hideNotice();
    showMessage(`${shortId(id)}: ${answer.message}`);
    const sync = state.syncs.get(id);
    if (sync) {
      sync.status = answer.status;
      refreshSync(id);
    }
  } catch (error) {
    reportError(error, "Cancelling the sync");
  } finally {
    button.disabled = false;
  }
}

async function retrySync(id, button) {
  button.disabled = true;
  try {
    const answer = await api("POST", "platform-sync/retry", { syncIds: [id] });
    const skipped = answer.skippedOperations.map((op) => `${shortId(op.syncId)}: ${op.reason}`);
    if (skipped.length) showNotice(`${answer.message}. ${skipped.join("; ")}`);
    else hideNotice();
    showMessage(answer.message);
    if (!state.socket?.connected) {
      loadActive();
      loadHistory();
    }
  } catch (error) {
    reportError(error, "Retrying the sync");
  } finally {
    button.disabled = false;
  }
}

// ---- live ------------------------------------------------------------------------------------

function setLive(text, kind) {
  const element = $("live-state");
  element.textContent = text;
  element.className = `live-state live-${kind}`;
  element.hidden = false;
}

function connectLive() {
  if (typeof window.io !== "function") {
    setLive("Live updates unavailable (socket.io client not loaded)", "off");
    return;
  }
  setLive("Live: connecting…", "wait");
  const socket = window.io(`${ROOT.origin}/sync-progress`, {
    path: `${ROOT.pathname}socket.io`,
    auth: (send) => send({ token: `Bearer ${state.token}` }),
    forceNew: true, // a new sign-in must not reuse the previous token's connection
  });
  state.socket = socket;
  socket.on("connect", () => {
    setLive("Live: connected", "on");
    if (state.everConnected) {
      loadActive();
      loadHistory();
      loadHealth();
    }
    state.everConnected = true;
  });
  socket.on("disconnect", (reason) => {
    if (reason === "io client disconnect") return;
    if (socket.active) setLive("Live: reconnecting…", "wait");
    else setLive("Live: disconnected by the server", "off");
  });
  socket.on("connect_error", (error) => {
    if (socket.active) {
      setLive("Live: reconnecting…", "wait"); // the transport failed; socket.io retries
      return;
    }
    const code = error?.data?.code;
    if (code === "token_expired" || code === "invalid_token" || code === "unauthenticated") {
      tokenRefused(error.message, code);
      return;
    }
    setLive(`Live: refused (${error?.message ?? "unknown reason"}); retrying`, "wait");
    later(3000, () => socket.connect());
  });
  socket.on("error", (payload) => {
    const message = payload?.data?.message ?? "Live updates error";
    if (/expired/i.test(message)) tokenRefused(message, "token_expired");
    else showNotice(`Live updates: ${message}`);
  });
  for (const type of SYNC_EVENTS) {
    socket.on(type, (payload) => {
      applySyncEvent(type, payload);
      logEvent(type, payload);
    });
  }
  for (const type of BATCH_EVENTS) {
    socket.on(type, (payload) => {
      applyBatchEvent(type, payload);
      logEvent(type, payload);
    });
  }
  socket.on("circuit-breaker-changed", (payload) => {
    logEvent("circuit-breaker-changed", payload);
    refreshSoon("health", loadHealth, 300);
  });
}

function applySyncEvent(type, payload) {
  const data = payload?.data ?? {};
  const id = data.syncId;
  if (!id) return;
  if (typeof payload.eventId === "number") {
    if (payload.eventId <= (state.lastEventId.get(id) ?? 0)) return; // already applied
    state.lastEventId.set(id, payload.eventId);
  }
  const isNew = !state.syncs.has(id);
  const sync = state.syncs.get(id) ?? {
    syncId: id,
    platformType: data.platformType,
    platformMenuId: data.platformMenuId ?? null,
    kind: data.kind ?? "menu",
    status: "pending",
    progress: 0,
    stage: "",
    createdAt: payload.timestamp,
  };
  switch (type) {
    case "sync-started":
      Object.assign(sync, {
        status: data.status ?? "pending",
        progress: 0,
        stage: "queued",
        error: null,
        message: null,
        duration: null,
        unchanged: false,
      });
      break;
    case "sync-progress":
      Object.assign(sync, {
        status: data.status ?? sync.status,
        progress: data.progress ?? sync.progress,
        stage: data.stage ?? sync.stage,
        message: data.message ?? sync.message,
        itemsProcessed: data.itemsProcessed ?? sync.itemsProcessed,
        itemsTotal: data.totalItems ?? sync.itemsTotal,
      });
      break;
    case "sync-retry-scheduled":
      Object.assign(sync, {
        status: "scheduled_retry",
        attempt: data.attempt,
        nextRetryAt: data.nextRetryAt,
        error: data.error ?? sync.error,
        message: data.message ?? sync.message,
      });
      break;
    case "sync-completed":
      Object.assign(sync, {
        status: data.status ?? "completed",
        progress: 100,
        duration: data.duration,
        itemsProcessed: data.itemsProcessed,
        message: data.message,
        unchanged: Boolean(data.unchanged),
        error: null,
        completedAt: payload.timestamp,
      });
      break;
    case "sync-failed":
      Object.assign(sync, {
        status: "failed",
        error: data.error ?? null,
        completedAt: payload.timestamp,
      });
      break;
    case "sync-cancelled":
      Object.assign(sync, {
        status: "cancelled",
        message: data.message ?? sync.message,
        completedAt: payload.timestamp,
      });
      break;
  }
  state.syncs.set(id, sync);
  if (ACTIVE.has(sync.status)) activeTable.prepend(id, ACTIVE_SHOWN);
  if (isNew && state.historyPage === 1 && state.pagination) {
    historyTable.prepend(id, HISTORY_LIMIT);
    const total = state.pagination.total + 1;
    state.pagination = { ...state.pagination, total, totalPages: Math.ceil(total / HISTORY_LIMIT) };
    renderPager();
  }
  if (TERMINAL.has(sync.status)) sync.stage = sync.status;
  if (isNew || TERMINAL.has(sync.status)) fetchSync(id, { whole: TERMINAL.has(sync.status) });
  refreshSync(id);
  if (TERMINAL.has(sync.status)) {
    later(FINISHED_ROW_LINGERS_MS, () => {
      if (TERMINAL.has(state.syncs.get(id)?.status)) activeTable.remove(id);
    });
    refreshSoon("health", loadHealth);
    if (sync.status === "failed") refreshSoon("connections", loadConnections);
  }
}

// Events do not carry everything a row shows (when the sync was requested, attempts, the final
// stage): a sync seen for the first time takes those from its status; a finished one takes its
// whole status, since no event follows an end but a retry's sync-started.
async function fetchSync(id, { whole }) {
  try {
    const { data } = await api("GET", `platform-sync/status/${encodeURIComponent(id)}`);
    const sync = state.syncs.get(id);
    if (!sync) return;
    if (whole && TERMINAL.has(data.status)) Object.assign(sync, data);
    else {
      const { createdAt, maxAttempts, kind, batchId, platformMenuId } = data;
      Object.assign(sync, { createdAt, maxAttempts, kind, batchId, platformMenuId });
      sync.attempt ??= data.attempt;
    }
    refreshSync(id);
  } catch (error) {
    reportError(error, "Loading a sync's status");
  }
}

function applyBatchEvent(type, payload) {
  const data = payload?.data ?? {};
  const id = data.batchId;
  if (!id) return;
  const batch = state.batches.get(id) ?? {
    batchId: id,
    platforms: [],
    overallStatus: "pending",
    overallProgress: 0,
    completedOperations: 0,
    failedOperations: 0,
    totalOperations: 0,
    startedAt: payload.timestamp,
  };
  if (type === "batch-sync-started") {
    Object.assign(batch, {
      platforms: data.platforms ?? [],
      platformMenuId: data.platformMenuId,
      totalOperations: data.totalOperations ?? 0,
    });
  } else {
    for (const key of [
      "overallStatus",
      "overallProgress",
      "completedOperations",
      "failedOperations",
      "totalOperations",
    ]) {
      if (data[key] !== undefined) batch[key] = data[key];
    }
    if (type === "batch-sync-completed") batch.overallProgress = 100;
  }
  state.batches.delete(id);
  state.batches.set(id, batch); // newest last
  while (state.batches.size > BATCHES_KEPT) state.batches.delete(state.batches.keys().next().value);
  renderBatches();
}

function renderBatches() {
  const items = [...state.batches.values()].reverse().map((batch) => {
    const menu = state.menus.get(batch.platformMenuId);
    return h(
      "li",
      {},
      h(
        "span",
        {},
        menu ? menu.name : `batch ${shortId(batch.batchId)}`,
        " → ",
        batch.platforms.join(", ") || "…",
        " ",
      ),
      badge(batch.overallStatus),
      h("progress", {
        max: 100,
        value: batch.overallProgress,
        "aria-label": `Batch ${shortId(batch.batchId)} progress`,
      }),
      h(
        "span",
        { className: "sub" },
        `${batch.completedOperations} of ${batch.totalOperations} completed, ${batch.failedOperations} failed`,
      ),
    );
  });
  $("batches").replaceChildren(
    ...(items.length
      ? items
      : [h("li", { className: "empty" }, "No batch since this page opened.")]),
  );
}

function describeEvent(type, data) {
  if (type.startsWith("batch-")) {
    const total = data.totalOperations ?? state.batches.get(data.batchId)?.totalOperations ?? "?";
    return `batch ${shortId(data.batchId)}: ${data.overallStatus ?? "started"}, ${data.completedOperations ?? 0} of ${total} completed`;
  }
  if (type === "circuit-breaker-changed")
    return `${data.platformType} circuit breaker ${data.state}`;
  const detail = data.error?.message ?? data.message ?? data.stage ?? "";
  const progress = data.progress !== undefined ? ` ${data.progress} %` : "";
  return `${data.platformType ?? ""} ${shortId(data.syncId)}: ${data.status ?? type.slice(5)}${progress}${detail ? `, ${detail}` : ""}`;
}

function logEvent(type, payload) {
  const list = $("events");
  list.prepend(
    h(
      "li",
      {},
      when(payload?.timestamp, clockFormat),
      " ",
      h("code", {}, type),
      " ",
      describeEvent(type, payload?.data ?? {}),
    ),
  );
  while (list.children.length > EVENTS_KEPT) list.lastElementChild.remove();
}

// ---- start -----------------------------------------------------------------------------------

$("token-form").addEventListener("submit", (event) => {
  event.preventDefault();
  hideNotice();
  signIn($("token").value);
});
$("sign-out").addEventListener("click", () => signOut());
$("notice-dismiss").addEventListener("click", hideNotice);
$("history-newer").addEventListener("click", () => loadHistory(Math.max(1, state.historyPage - 1)));
$("history-older").addEventListener("click", () => loadHistory(state.historyPage + 1));
const loaders = {
  health: loadHealth,
  connections: loadConnections,
  menus: loadMenus,
  active: loadActive,
  history: () => loadHistory(),
};
for (const button of document.querySelectorAll("[data-refresh]")) {
  button.addEventListener("click", () => loaders[button.dataset.refresh]());
}
renderBatches();

const saved = sessionStorage.getItem(TOKEN_KEY);
if (saved) signIn(saved, { remember: false });
else showSignIn();
