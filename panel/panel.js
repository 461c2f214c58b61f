// The local panel: live lane state over server-sent events, attendant actions with
// the bearer token, and in sim mode the controls that drive the simulated hardware.
import { yuan, lotTime, duration, describeEvent, quietEvents, outboxSummary, listOrEmpty } from "./format.js";
import { translator, errorText } from "./i18n.js";
import { createShiftView } from "./shift.js";
import { createRecordsView } from "./records.js";
import { createLotView } from "./lot.js";
import { createShortcuts } from "./shortcuts.js";
import { createExitCard } from "./exit-card.js";

const $ = (sel, root = document) => root.querySelector(sel);
const $$ = (sel, root = document) => [...root.querySelectorAll(sel)];

// The language is a preference of this computer; the token lives only as long as the tab
// (sessionStorage), so a booth PC left open overnight does not keep it after the tab closes.
let lang = localStorage.getItem("lk.lang") === "en" ? "en" : "zh";
let t = translator(lang);
const ui = (key) => t("ui", key);

let status = null;
let statusAt = 0;
/** Counters a person (or a test) can read from the console: no request storms, reconnects. */
const diag = { statusEvents: 0, connects: 0, reconnects: 0, actions: 0, refused: 0 };
window.lkPanel = diag;

function auth() {
  return { token: sessionStorage.getItem("lk.token") ?? "", operator: sessionStorage.getItem("lk.operator") ?? "" };
}

// ---- language --------------------------------------------------------------------------------

function applyLanguage() {
  t = translator(lang);
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  $("#lang").textContent = ui("language");
  for (const el of $$("[data-i18n]")) el.textContent = label(el.dataset.i18n);
  for (const el of $$("[data-i18n-placeholder]")) el.placeholder = label(el.dataset.i18nPlaceholder);
  for (const select of $$(".reason-pick")) fillReasons(select);
  setConn($("#conn").dataset.state);
  // What the page said before the switch, said again in the new language.
  for (const [el, spec] of results) if (el.isConnected) showResult(el, spec);
  authMessage(authSpec.render, authSpec.state);
  notice(noticeSpec);
  shiftView.relabel();
  recordsView.relabel();
  lotView.relabel();
  if (status) render(status);
}

function label(path) {
  const dot = path.indexOf(".");
  return t(path.slice(0, dot), path.slice(dot + 1));
}

// ---- messages ----------------------------------------------------------------------------------

/** The banner, kept as a function of the language like the result lines. */
let noticeSpec = () => "";

function notice(text) {
  noticeSpec = typeof text === "function" ? text : () => text ?? "";
  const el = $("#notice");
  el.textContent = noticeSpec();
  el.hidden = !el.textContent;
}

/** The login line, kept as a function of the language so a switch re-says it. */
let authSpec = { render: () => "", state: "" };

function authMessage(text, state = "") {
  const render = typeof text === "function" ? text : () => text ?? "";
  authSpec = { render, state };
  const el = $("#auth-msg");
  el.textContent = render();
  el.dataset.state = state;
}

/**
 * Result lines (under a lane, the shift card) are kept as functions of the language: after a
 * switch to English the page does not go on saying "已执行". `title` is the box's own words
 * (English, for support), one hover away.
 */
const results = new Map();

function showResult(el, spec) {
  el.textContent = spec.render();
  el.dataset.outcome = spec.outcome;
  el.title = spec.title ?? "";
}

function laneResult(card, text, outcome, title = "") {
  const el = $(".result", card);
  const spec = { render: typeof text === "function" ? text : () => text, outcome, title };
  results.set(el, spec);
  showResult(el, spec);
}

// ---- authentication ------------------------------------------------------------------------------

function renderAuth() {
  const { token, operator } = auth();
  $("#login").hidden = Boolean(token);
  $("#logout").hidden = !token;
  $("#who").hidden = !token;
  $("#who-name").textContent = operator;
  if (!token && operator) $("#operator").value = operator;
  document.body.dataset.auth = token ? "in" : "out";
}

async function login(event) {
  event.preventDefault();
  const operator = $("#operator").value.trim();
  const token = $("#token").value;
  if (!operator || !token) return authMessage(ui("needLogin"), "error");
  let res;
  try {
    res = await fetch("/api/panel/session", { headers: { authorization: `Bearer ${token}` }, cache: "no-store" });
  } catch {
    return authMessage(() => `${ui("cannotCheck")}: ${ui("networkError")}`, "error");
  }
  if (res.status === 401) return authMessage(() => ui("wrongToken"), "error");
  if (!res.ok) return authMessage(() => `${ui("cannotCheck")}: HTTP ${res.status}`, "error");
  sessionStorage.setItem("lk.operator", operator);
  sessionStorage.setItem("lk.token", token);
  $("#token").value = "";
  authMessage("");
  renderAuth();
  connect();
}

function logout() {
  sessionStorage.removeItem("lk.token");
  renderAuth();
  connect();
}

// ---- actions -----------------------------------------------------------------------------------

/**
 * Sends an action. Without a token the request still goes out, bare: the box is the one that
 * decides, and the page shows its refusal (a page-only check would prove nothing).
 */
async function post(path, body, card, doneText = () => ui("done")) {
  const { token } = auth();
  diag.actions++;
  let res;
  try {
    res = await fetch(path, {
      method: "POST",
      headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify(body),
      cache: "no-store",
    });
  } catch (error) {
    laneResult(card, () => `${ui("failed")}: ${ui("networkError")}`, "error", String(error?.message ?? ""));
    return undefined;
  }
  const payload = await res.json().catch(() => ({}));
  if (!res.ok) {
    diag.refused++;
    laneResult(card, () => refusalText(res.status, payload?.error), "refused", payload?.error?.message ?? "");
    if (res.status === 401) {
      // A token the box no longer takes (changed, or never given): forget it and ask again.
      sessionStorage.removeItem("lk.token");
      renderAuth();
      authMessage(() => ui("needLogin"), "error");
      laneResult(card, () => `${refusalText(401, payload?.error)} ${ui("needLogin")}`, "refused", payload?.error?.message ?? "");
    }
    return undefined;
  }
  // The box's own words (English, for support) stay one hover away.
  laneResult(card, typeof doneText === "function" ? doneText : () => doneText, "ok", payload?.detail ?? "");
  return payload;
}

/**
 * A refusal in the page's language, from its stable code (E_PAID_ONLINE: the platform collected
 * the bill, the attendant must not take cash too). The box's English message is added only in
 * English.
 */
function refusalText(httpStatus, error) {
  const text = `${ui("refused")} (${httpStatus}): ${errorText(lang, error?.code, httpStatus)}`;
  return lang === "en" && error?.message ? `${text} — ${error.message}` : text;
}

const shiftView = createShiftView({ $, label: (group, key) => t(group, key), auth, post, zone, lang: () => lang });
const shortcuts = createShortcuts({
  $,
  lanes: () => status?.lanes ?? [],
  // Off while the records are on screen: no lane is in sight there.
  enabled: () => $("#view-records").hidden,
  unavailable: (card) => laneResult(card, () => errorText(lang, "E_NO_VEHICLE"), "refused"),
});
const exitCard = createExitCard({
  $,
  label: (group, key) => t(group, key),
  zone,
  auth,
  post,
  ask: (card, text) => laneResult(card, () => text, "refused"),
});
const recordsView = createRecordsView({ $, $$, label: (group, key) => t(group, key), auth, zone, lang: () => lang, refusalText });
const lotView = createLotView({ $, label: (group, key) => t(group, key), auth, zone });

function laneOf(laneId) {
  return status?.lanes?.find((lane) => lane.id === laneId);
}

/** The reasons to open by hand, in the page's language; "other" asks for one typed. */
function fillReasons(select) {
  const chosen = select.value;
  const keys = ["plate", "fault", "special", "platform", "approved", "other"];
  select.replaceChildren(new Option(ui("reasonPick"), ""), ...keys.map((key) => new Option(t("openReason", key), key)));
  select.value = chosen;
}

/** The reason given on a card: typed words first, else the picked one ("other" needs words). */
function reasonOf(card) {
  const typed = $(".reason", card).value.trim();
  if (typed) return typed;
  const picked = $(".reason-pick", card).value;
  return picked && picked !== "other" ? t("openReason", picked) : "";
}

async function command(card, laneId, name) {
  const reasonInput = $(".reason", card);
  const given = reasonOf(card);
  // Every open by hand is accounted for in the shift report with its reason (the box refuses one
  // without, E_REASON_REQUIRED): asked for here first, so the attendant picks one at once.
  if (name === "open" && !given) {
    laneResult(card, () => ui("reasonNeeded"), "refused");
    const pick = $(".reason-pick", card);
    (pick.value === "other" ? reasonInput : pick).focus();
    return;
  }
  const reason = given || t("command", name);
  const result = await post(
    `/api/lanes/${encodeURIComponent(laneId)}/commands`,
    { command: name, operator: auth().operator || "panel", reason },
    card,
    () => `${ui("done")}: ${t("command", name)}`,
  );
  if (result) {
    reasonInput.value = "";
    $(".reason-pick", card).value = "";
  }
}

/** Levels the page set for the simulated loops, kept briefly so a quick second click toggles back. */
const simLevels = new Map();

async function toggleLoop(card, laneId, name) {
  const key = `${laneId}.${name}`;
  const local = simLevels.get(key);
  const current = local && Date.now() - local.atMs < 1500 ? local.level : laneOf(laneId)?.loops?.[name] ? 1 : 0;
  const level = current ? 0 : 1;
  const ok = await post(`/api/sim/inputs/${encodeURIComponent(laneId)}/${name}`, { level }, card);
  if (ok) simLevels.set(key, { level, atMs: Date.now() });
}

function laneCard(lane) {
  let card = document.getElementById(`lane-${lane.id}`);
  if (card) return card;
  card = $("#lane-template").content.firstElementChild.cloneNode(true);
  card.id = `lane-${lane.id}`;
  card.dataset.lane = lane.id;
  for (const button of $$("[data-command]", card)) {
    button.addEventListener("click", async () => {
      // One press, one request: a double click must not pay twice or release twice.
      if (button.dataset.busy) return;
      button.dataset.busy = "1";
      button.disabled = true;
      try {
        await command(card, lane.id, button.dataset.command);
      } finally {
        delete button.dataset.busy;
        button.disabled = false;
        const current = laneOf(lane.id);
        if (current && status) renderLane(current, status);
      }
    });
  }
  for (const button of $$("[data-sim-input]", card)) {
    button.addEventListener("click", () => void toggleLoop(card, lane.id, button.dataset.simInput));
  }
  const sendPlate = () => {
    const plate = $(".sim-plate", card).value.trim();
    if (plate) void post(`/api/sim/camera/${encodeURIComponent(lane.id)}`, { plate }, card);
  };
  const scan = () => {
    const code = $(".sim-code", card).value.trim();
    if (code) void post(`/api/sim/scanner/${encodeURIComponent(lane.id)}`, { code }, card);
  };
  $("[data-sim=camera]", card).addEventListener("click", sendPlate);
  $("[data-sim=scanner]", card).addEventListener("click", scan);
  $(".sim-plate", card).addEventListener("keydown", (e) => e.key === "Enter" && sendPlate());
  $(".sim-code", card).addEventListener("keydown", (e) => e.key === "Enter" && scan());
  exitCard.wire(card, lane.id);
  const pick = $(".reason-pick", card);
  fillReasons(pick);
  pick.addEventListener("change", () => {
    if (pick.value === "other") $(".reason", card).focus();
  });
  // The lane the attendant last touched is one the keyboard shortcuts may act on.
  card.addEventListener("focusin", () => shortcuts.touched(lane.id));
  card.addEventListener("pointerdown", () => shortcuts.touched(lane.id));
  for (const el of $$("[data-i18n]", card)) el.textContent = label(el.dataset.i18n);
  for (const el of $$("[data-i18n-placeholder]", card)) el.placeholder = label(el.dataset.i18nPlaceholder);
  $("#lanes").append(card);
  return card;
}

// ---- rendering -----------------------------------------------------------------------------------

function zone() {
  return status?.lot?.timeZone ?? "Asia/Shanghai";
}

function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}

function renderLane(lane, s) {
  const card = laneCard(lane);
  setText($(".lane-name", card), lane.name ?? lane.id);
  setText($(".lane-dir", card), t("direction", lane.direction));
  setText($(".lane-id", card), lane.name && lane.name !== lane.id ? lane.id : "");
  for (const name of ["loopA", "loopB"]) {
    const on = Boolean(lane.loops?.[name]);
    const el = $(`.${name}`, card);
    el.dataset.state = on ? "occupied" : "clear";
    setText(el, on ? ui("occupied") : ui("clear"));
    const toggle = $(`[data-sim-input=${name}]`, card);
    toggle.setAttribute("aria-pressed", String(on));
    setText(toggle, `${ui(name)}: ${on ? ui("release") : ui("press")}`);
  }
  const barrier = $(".barrier", card);
  barrier.dataset.state = lane.barrier ?? "";
  setText(barrier, t("barrier", lane.barrier));
  const phase = $(".phase", card);
  phase.dataset.state = lane.phase ?? "idle";
  setText(phase, t("phase", lane.phase ?? "idle"));
  const faults = lane.detectorFaults ?? [];
  $(".faults", card).hidden = faults.length === 0;
  setText($(".faults", card), faults.length ? `${ui("detectorFault")}: ${faults.map((f) => ui(String(f))).join(", ")}` : "");

  const vehicle = lane.vehicle;
  setText($(".plate", card), vehicle?.plate || "—");
  const fee = $(".fee", card);
  fee.dataset.fen = typeof vehicle?.dueFen === "number" ? String(vehicle.dueFen) : "";
  setText(fee, typeof vehicle?.dueFen === "number" ? yuan(vehicle.dueFen) : "—");
  setText($(".path-label", card), lane.direction === "in" ? ui("entry") : ui("payment"));
  const pay = $(".pay", card);
  pay.dataset.path = vehicle?.paymentPath ?? "";
  setText(pay, vehicle?.paymentPath ? t("path", vehicle.paymentPath) : "—");
  setText($(".display-line", card), (lane.display?.lines ?? []).join("  |  "));
  exitCard.render(card, lane, new Map((s.lanes ?? []).map((l) => [l.id, l.name ?? l.id])));

  for (const el of $$(".exit-only", card)) el.hidden = lane.direction !== "out";
  $("[data-command=cash-paid]", card).disabled = lane.phase !== "awaitingPayment";
  $(".sim", card).hidden = !s.sim;
  const serial = Object.values(s.links?.serial ?? {});
  const hasScanner = serial.some((d) => d?.kind === "scanner" && d?.laneId === lane.id);
  $(".scanner-only", card).hidden = !hasScanner;
  card.dataset.phase = lane.phase ?? "idle";
}

function linkState(value) {
  if (value === undefined || value === null) return undefined;
  if (typeof value === "string") return value;
  if (typeof value === "object" && typeof value.state === "string") return value.state;
  if (typeof value === "object" && typeof value.connected === "number") return value.connected ? "up" : "down";
  return undefined;
}

function linkText(state) {
  if (state === undefined) return ui("notConfigured");
  if (state === "up" || state === "connected") return ui("up");
  if (state === "probing") return ui("probing");
  if (state === "not configured") return ui("notConfigured");
  // The link's own state word is English: shown only in the English page.
  return lang === "en" ? `${ui("downLink")} (${state})` : ui("downLink");
}

function renderHealth(s) {
  const rows = [];
  const add = (key, name, value, state = "") => rows.push({ key, name, value, state });
  add("spaces", ui("free"), `${s.lot?.freeSpaces ?? "?"} / ${s.lot?.totalSpaces ?? "?"}`);
  add("in-park", ui("inPark"), String(s.lot?.inPark ?? s.store?.inPark ?? "?"));
  // Drivers who paid a stay twice: what the attendant owes back (GET /api/refunds lists them).
  const refunds = s.refunds ?? {};
  add("refunds", ui("refunds"), `${refunds.owedCount ?? 0} · ${yuan(refunds.owedFen ?? 0)}`, refunds.owedCount ? "warn" : "ok");
  const ob = s.outbox ?? {};
  add("outbox", ui("outbox"), `${outboxSummary(ob, ui)} · ${linkText(ob.link)}`, ob.link === "up" && !ob.parked && !ob.retrying ? "ok" : "warn");
  const platform = linkState(s.links?.platform);
  const failures = Object.values(s.links?.platform?.failures ?? {}).reduce((a, b) => a + (Number(b) || 0), 0);
  add(
    "platform",
    ui("platform"),
    `${linkText(platform)} · ${s.links?.platform?.ok ?? 0}/${s.links?.platform?.calls ?? 0} ok${failures ? `, ${failures} ✗` : ""}`,
    platform === "up" ? "ok" : "bad",
  );
  const mqtt = linkState(s.links?.mqtt) ?? linkState(s.fleet);
  add("mqtt", ui("mqtt"), linkText(mqtt), mqtt === undefined ? "" : mqtt === "up" || mqtt === "connected" ? "ok" : "bad");
  const devices = Object.values(s.links?.serial ?? {});
  if (devices.length) {
    const down = devices.filter((d) => d?.link?.state !== "up").map((d) => d.device);
    add("serial", ui("serial"), `${devices.length - down.length}/${devices.length} ${ui("up")}${down.length ? ` · ${down.join(", ")}` : ""}`, down.length ? "bad" : "ok");
  }
  const alarms = s.store?.alarms?.length ?? 0;
  const warnings = s.store?.warnings?.length ?? 0;
  add("store", ui("store"), alarms || warnings ? `${ui("alarms")} ${alarms}, ${ui("warnings")} ${warnings}` : ui("ok"), alarms ? "bad" : warnings ? "warn" : "ok");
  add("uptime", ui("uptime"), duration((s.uptimeS ?? 0) * 1000));
  add("version", ui("version"), String(s.version ?? "?"));
  $("#health").replaceChildren(
    ...rows.flatMap(({ key, name, value, state }) => {
      const dt = document.createElement("dt");
      dt.textContent = name;
      const dd = document.createElement("dd");
      dd.textContent = value;
      dd.dataset.key = key;
      if (state) dd.dataset.state = state;
      return [dt, dd];
    }),
  );
}

function renderEvents(s) {
  const lanes = new Map((s.lanes ?? []).map((lane) => [lane.id, lane.name ?? lane.id]));
  const shown = (s.events ?? [])
    .filter((e) => !quietEvents.has(e.type))
    .slice(-30)
    .reverse();
  const items = shown.map((e) => {
    const li = document.createElement("li");
    li.dataset.type = e.type;
    if (e.laneId) li.dataset.lane = e.laneId;
    li.textContent = describeEvent(e, { label: t, zone: zone(), lanes, english: lang === "en" });
    return li;
  });
  $("#events").replaceChildren(...listOrEmpty(items, ui("noEvents")));
}

function renderClock() {
  const s = status;
  if (!s) return;
  const el = $("#box-time");
  if (typeof s.nowMs === "number") {
    // The box's clock, moved on locally between status events (no request per second).
    const boxNow = s.nowMs + (Date.now() - statusAt);
    const offsetMs = s.nowMs - statusAt;
    const off = Math.abs(offsetMs) > 5000 ? ` · ${ui("offset")} ${duration(Math.abs(offsetMs))}` : "";
    setText(el, `${ui("boxTime")} ${lotTime(boxNow, zone())} (${zone()})${off}`);
    el.dataset.ms = String(boxNow);
    el.className = `pill ${off ? "warn" : ""}`;
  }
}

function render(s) {
  status = s;
  setText($("#device"), `${s.lot?.name ?? ""} · ${s.deviceId ?? ""}`);
  setText($("#version"), `v${s.version ?? "?"}`);
  setText($("#footer-version"), `v${s.version ?? "?"} · ${s.deviceId ?? ""}`);
  const clock = s.system?.clock;
  const synced = clock?.synced;
  const sync = $("#clock-sync");
  sync.dataset.state = synced === true ? "synced" : synced === false ? "unsynced" : "unknown";
  sync.className = `pill ${synced === true ? "ok" : synced === false ? "bad" : "warn"}`;
  setText(sync, synced === true ? ui("clockSynced") : synced === false ? ui("clockUnsynced") : ui("clockUnknown"));
  sync.title = clock ? `${clock.source ?? ""} ${clock.detail ?? ""}`.trim() : "";
  const seen = new Set();
  for (const lane of s.lanes ?? []) {
    renderLane(lane, s);
    seen.add(`lane-${lane.id}`);
  }
  for (const card of $$(".lane")) if (!seen.has(card.id)) card.remove();
  renderHealth(s);
  renderEvents(s);
  shiftView.update(s);
  renderClock();
}

// ---- the live stream -------------------------------------------------------------------------------

let source;
let retryTimer;
let retryMs = 1000;
let lastMessageAt = 0;

function setConn(state) {
  const el = $("#conn");
  el.dataset.state = state;
  el.textContent = ui(state === "live" ? "live" : state === "reconnecting" ? "reconnecting" : state === "connecting" ? "connecting" : "down");
  el.className = `pill ${state === "live" ? "ok" : state === "down" ? "bad" : "warn"}`;
}

function connect() {
  clearTimeout(retryTimer);
  source?.close();
  const { token } = auth();
  diag.connects++;
  lastMessageAt = Date.now();
  const url = token ? `/api/stream?access_token=${encodeURIComponent(token)}` : "/api/stream";
  const es = new EventSource(url);
  source = es;
  es.addEventListener("status", (event) => {
    if (es !== source) return;
    diag.statusEvents++;
    lastMessageAt = Date.now();
    statusAt = Date.now();
    retryMs = 1000;
    setConn("live");
    notice("");
    delete document.body.dataset.read;
    render(JSON.parse(event.data));
  });
  es.addEventListener("error", () => {
    if (es !== source) return;
    if (es.readyState === EventSource.CLOSED) {
      // A refusal (401, 503) or a bad reply closes an EventSource for good; a dropped
      // connection (server restart) is retried by the browser after the server's retry hint.
      setConn("down");
      void explainClosed();
      scheduleReconnect();
    } else {
      setConn("reconnecting");
    }
  });
}

function scheduleReconnect() {
  clearTimeout(retryTimer);
  retryTimer = setTimeout(() => {
    diag.reconnects++;
    connect();
  }, retryMs);
  retryMs = Math.min(retryMs * 2, 15_000);
}

/** Why did the stream close? One request, only after a refusal. */
async function explainClosed() {
  const { token } = auth();
  try {
    const res = await fetch("/api/status", { headers: token ? { authorization: `Bearer ${token}` } : {}, cache: "no-store" });
    if (res.status === 401) {
      if (token) {
        sessionStorage.removeItem("lk.token");
        renderAuth();
      }
      // Nothing to read until someone logs in (which reconnects): stop knocking.
      clearTimeout(retryTimer);
      notice(() => ui("readNeedsLogin"));
      document.body.dataset.read = "login-required";
    } else if (res.status === 503) {
      notice(() => ui("tooManyPanels"));
    }
  } catch {
    // The box is away; the reconnect loop carries on.
  }
}

// The server sends a status at least every 10 s; silence for much longer means a half-open
// connection (a box that rebooted behind a switch), which EventSource alone would not notice.
setInterval(() => {
  if (source && source.readyState !== EventSource.CLOSED && Date.now() - lastMessageAt > 35_000) {
    diag.reconnects++;
    setConn("reconnecting");
    connect();
  }
  renderClock();
}, 1000);

$("#lang").addEventListener("click", () => {
  lang = lang === "zh" ? "en" : "zh";
  localStorage.setItem("lk.lang", lang);
  applyLanguage();
});
$("#login").addEventListener("submit", (event) => void login(event));
$("#logout").addEventListener("click", logout);
for (const button of $$("[data-view]")) button.addEventListener("click", () => showView(button.dataset.view));

/** Lanes or records; the lanes keep updating underneath, the records are asked for on demand. */
function showView(view) {
  $("#view-lanes").hidden = view !== "lanes";
  $("#view-records").hidden = view !== "records";
  for (const button of $$("[data-view]")) button.setAttribute("aria-pressed", String(button.dataset.view === view));
  document.body.dataset.view = view;
  if (view === "records") recordsView.shown();
}

renderAuth();
applyLanguage();
setConn("connecting");
connect();
lotView.start();
