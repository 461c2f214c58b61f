// The local panel: live lane state over server-sent events, attendant actions with the
// bearer token, and (in sim mode) controls that drive the simulated hardware.
const I18N = {
  zh: {
    title: "车道控制器", disconnected: "未连接", connected: "已连接", login: "登录", logout: "退出",
    health: "链路与队列", events: "最近事件", loopA: "前地感", loopB: "安全地感", barrier: "道闸",
    phase: "状态", plate: "车牌", bill: "应缴", payment: "支付方式", cashPaid: "现金已收", open: "开闸",
    close: "落闸", cancel: "取消", sim: "模拟", toggleA: "前地感 开/关", toggleB: "安全地感 开/关",
    sendPlate: "识别车牌", scan: "扫码", reasonPh: "原因", in: "入口", out: "出口",
    outbox: "待上报", parked: "搁置", oldest: "最早", platform: "平台", mqtt: "MQTT", clockSync: "时钟同步",
    free: "空余车位", yes: "是", no: "否", unknown: "未知", needLogin: "请先登录（令牌）", done: "已执行",
    refused: "被拒绝", uptime: "运行时间",
    closed: "已落杆", opening: "抬杆中", open: "已抬杆", closing: "落杆中", fault: "故障",
  },
  en: {
    title: "Lane controller", disconnected: "disconnected", connected: "live", login: "Log in", logout: "Log out",
    health: "Links and queue", events: "Recent events", loopA: "Arming loop", loopB: "Safety loop", barrier: "Barrier",
    phase: "Phase", plate: "Plate", bill: "Due", payment: "Payment", cashPaid: "Cash received", open: "Open",
    close: "Close", cancel: "Cancel", sim: "Simulator", toggleA: "Toggle arming loop", toggleB: "Toggle safety loop",
    sendPlate: "Send plate", scan: "Scan code", reasonPh: "reason", in: "entry", out: "exit",
    outbox: "Outbox", parked: "parked", oldest: "oldest", platform: "Platform", mqtt: "MQTT", clockSync: "Clock synced",
    free: "Free spaces", yes: "yes", no: "no", unknown: "unknown", needLogin: "Log in with the token first", done: "done",
    refused: "refused", uptime: "Uptime",
    closed: "closed", opening: "opening", open: "open", closing: "closing", fault: "FAULT",
  },
};

let lang = sessionStorage.getItem("lk.lang") ?? "zh";
let status = null;
const t = (key) => I18N[lang][key] ?? key;
const $ = (sel, root = document) => root.querySelector(sel);

function auth() {
  return { token: sessionStorage.getItem("lk.token"), operator: sessionStorage.getItem("lk.operator") };
}

export function yuan(fen) {
  return typeof fen === "number" ? `${(fen / 100).toFixed(2)} 元` : "—";
}

function localTime(ms) {
  if (!ms) return "";
  const zone = status?.lot?.timeZone ?? "Asia/Shanghai";
  return new Intl.DateTimeFormat("zh-CN", { timeZone: zone, hour12: false, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" }).format(new Date(ms));
}

function toast(text) {
  const el = $("#toast");
  el.textContent = text;
  el.classList.add("show");
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => el.classList.remove("show"), 2500);
}

function applyLanguage() {
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  $("#lang").textContent = lang === "zh" ? "English" : "中文";
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of document.querySelectorAll("[data-i18n-placeholder]")) el.placeholder = t(el.dataset.i18nPlaceholder);
  if (status) render(status);
}

function renderAuth() {
  const { token, operator } = auth();
  $("#login").hidden = Boolean(token);
  $("#logout").hidden = !token;
  $("#who").hidden = !token;
  $("#who").textContent = operator ?? "";
}

async function post(path, body) {
  const { token } = auth();
  if (!token) {
    toast(t("needLogin"));
    return undefined;
  }
  const res = await fetch(path, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify(body),
  });
  const payload = await res.json().catch(() => ({}));
  if (!res.ok) {
    toast(`${t("refused")}: ${payload?.error?.message ?? res.status}`);
    if (res.status === 401) {
      sessionStorage.removeItem("lk.token");
      renderAuth();
    }
    return undefined;
  }
  toast(t("done"));
  return payload;
}

function laneCard(lane) {
  let card = document.getElementById(`lane-${lane.id}`);
  if (card) return card;
  card = $("#lane-template").content.firstElementChild.cloneNode(true);
  card.id = `lane-${lane.id}`;
  card.dataset.lane = lane.id;
  for (const button of card.querySelectorAll("[data-command]")) {
    button.addEventListener("click", () => {
      const reason = $(".reason", card).value || button.dataset.command;
      void post(`/api/lanes/${lane.id}/commands`, { command: button.dataset.command, operator: auth().operator ?? "panel", reason });
    });
  }
  for (const button of card.querySelectorAll("[data-sim-input]")) {
    button.addEventListener("click", () => {
      const name = button.dataset.simInput;
      const current = status?.lanes?.find((l) => l.id === lane.id)?.loops?.[name] ? 1 : 0;
      void post(`/api/sim/inputs/${lane.id}/${name}`, { level: current ? 0 : 1 });
    });
  }
  $("[data-sim=camera]", card).addEventListener("click", () => {
    const plate = $(".sim-plate", card).value.trim();
    if (plate) void post(`/api/sim/camera/${lane.id}`, { plate });
  });
  $("[data-sim=scanner]", card).addEventListener("click", () => {
    const code = $(".sim-code", card).value.trim();
    if (code) void post(`/api/sim/scanner/${lane.id}`, { code });
  });
  $("#lanes").append(card);
  return card;
}

function render(s) {
  status = s;
  $("#device").textContent = `${s.lot?.name ?? ""} · ${s.deviceId}`;
  $("#version").textContent = `v${s.version}`;
  const synced = s.clock?.synced;
  $("#clock").textContent = `${t("clockSync")}: ${synced === true ? t("yes") : synced === false ? t("no") : t("unknown")}`;
  $("#clock").className = `pill ${synced === true ? "ok" : synced === false ? "bad" : ""}`;
  for (const lane of s.lanes ?? []) {
    const card = laneCard(lane);
    $(".lane-name", card).textContent = lane.name ?? lane.id;
    $(".lane-dir", card).textContent = t(lane.direction);
    $(".loopA", card).classList.toggle("on", Boolean(lane.loops?.loopA));
    $(".loopB", card).classList.toggle("on", Boolean(lane.loops?.loopB));
    $(".barrier", card).textContent = t(lane.barrier);
    $(".phase", card).textContent = lane.phase ?? "";
    const vehicle = lane.vehicle;
    $(".plate", card).textContent = vehicle?.plate ?? "—";
    $(".fee", card).textContent = vehicle ? yuan(vehicle.dueFen) : "—";
    $(".pay", card).textContent = vehicle?.paymentPath ?? "—";
    $(".display-line", card).textContent = (lane.display?.lines ?? []).join(" | ");
    for (const el of card.querySelectorAll(".exit-only")) el.hidden = lane.direction !== "out";
    $(".sim", card).hidden = !s.sim;
  }
  const health = [
    [t("free"), `${s.lot?.freeSpaces ?? "?"} / ${s.lot?.totalSpaces ?? "?"}`],
    [t("outbox"), `${s.outbox?.depth ?? 0} (${t("parked")} ${s.outbox?.parked ?? 0}${s.outbox?.oldestAgeMs ? `, ${t("oldest")} ${Math.round(s.outbox.oldestAgeMs / 1000)} s` : ""})`],
    [t("platform"), s.links?.platform?.state ?? "—"],
    [t("mqtt"), s.links?.mqtt?.state ?? "—"],
    [t("uptime"), `${s.uptimeS ?? 0} s`],
  ];
  $("#health").replaceChildren(...health.flatMap(([k, v]) => {
    const dt = document.createElement("dt");
    dt.textContent = k;
    const dd = document.createElement("dd");
    dd.textContent = v;
    return [dt, dd];
  }));
  $("#events").replaceChildren(...(s.events ?? []).slice(-30).reverse().map((e) => {
    const li = document.createElement("li");
    const money = typeof e.feeFen === "number" ? ` ${yuan(e.feeFen)}` : "";
    li.textContent = `${localTime(e.atMs)} ${e.laneId ?? ""} ${e.type}${e.plate ? ` ${e.plate}` : ""}${money}${e.reason ? ` (${e.reason})` : ""}`;
    return li;
  }));
}

function connect() {
  const { token } = auth();
  const source = new EventSource(token ? `/api/stream?access_token=${encodeURIComponent(token)}` : "/api/stream");
  source.addEventListener("status", (event) => render(JSON.parse(event.data)));
  source.addEventListener("open", () => {
    $("#conn").textContent = t("connected");
    $("#conn").className = "pill ok";
    $("#conn").dataset.state = "live";
  });
  source.addEventListener("error", () => {
    // EventSource reconnects by itself (the server sends a retry hint); show the gap meanwhile.
    $("#conn").textContent = t("disconnected");
    $("#conn").className = "pill bad";
    $("#conn").dataset.state = "down";
  });
  return source;
}

$("#lang").addEventListener("click", () => {
  lang = lang === "zh" ? "en" : "zh";
  sessionStorage.setItem("lk.lang", lang);
  applyLanguage();
});
$("#login").addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem("lk.operator", $("#operator").value.trim());
  sessionStorage.setItem("lk.token", $("#token").value);
  $("#token").value = "";
  renderAuth();
  stream.close();
  stream = connect();
});
$("#logout").addEventListener("click", () => {
  sessionStorage.removeItem("lk.token");
  renderAuth();
});

renderAuth();
applyLanguage();
let stream = connect();
