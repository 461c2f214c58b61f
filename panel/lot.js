// The lot card: the whole lot as this box sees it (GET /api/lot) — every box of the lot with its
// lanes, online or not and when it was last heard of, the cars in the lot and the free spaces,
// and whether the view is live or stale (the lot's broker out of reach). Read-only; it asks
// the box every few seconds while the page is open.
import { lotTime } from "./format.js";

const REFRESH_MS = 3000;

/** `deps`: `$` (query), `label(group, key)`, `auth()` ({ token }), `zone()` (the lot's time zone). */
export function createLotView(deps) {
  const { $ } = deps;
  const l = (key) => deps.label("lot", key);
  let last = null;
  let failed = false;
  let timer;

  async function refresh() {
    const { token } = deps.auth();
    try {
      const res = await fetch("/api/lot", { headers: token ? { authorization: `Bearer ${token}` } : {}, cache: "no-store" });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      last = await res.json();
      failed = false;
    } catch {
      // The box itself is away (the lane view says so too); keep what was shown, marked.
      failed = true;
    }
    render();
  }

  function pill(el, text, tone) {
    el.textContent = text;
    el.className = `pill ${tone}`;
  }

  function boxRow(box, self) {
    const li = document.createElement("li");
    li.className = "lot-box";
    li.dataset.device = box.deviceId;
    li.dataset.online = box.online ? "1" : "0";
    const name = document.createElement("b");
    name.textContent = box.deviceId === self ? `${box.deviceId} (${l("thisBox")})` : box.deviceId;
    const state = document.createElement("span");
    pill(state, box.online ? l("online") : l("offline"), box.online ? "ok" : "bad");
    state.classList.add("lot-box-state");
    const lanes = document.createElement("small");
    lanes.className = "lot-box-lanes";
    lanes.textContent = (box.lanes ?? []).map((lane) => `${lane.laneId} ${deps.label("direction", lane.direction)}`).join(" · ");
    const seen = document.createElement("small");
    seen.className = "lot-box-seen";
    seen.textContent = `${l("lastSeen")} ${lotTime(box.lastSeenMs, deps.zone())}`;
    li.append(name, " ", state, document.createElement("br"), lanes, " ", seen);
    return li;
  }

  function render() {
    const card = $("#lot");
    if (!card) return;
    const view = $("#lot-view");
    if (!last) {
      pill(view, failed ? l("unreachable") : l("loading"), failed ? "bad" : "warn");
      view.dataset.state = failed ? "unreachable" : "loading";
      return;
    }
    const state = failed ? "unreachable" : last.view;
    view.dataset.state = state;
    const tone = state === "live" || state === "local" ? "ok" : state === "stale" ? "warn" : "bad";
    pill(view, l(state), tone);
    view.title = last.staleSinceMs !== undefined ? `${l("staleSince")} ${lotTime(last.staleSinceMs, deps.zone())}` : "";
    $("#lot-cars").textContent = String(last.cars ?? "—");
    $("#lot-free").textContent = String(last.freeSpaces ?? "—");
    $("#lot-boxes").replaceChildren(...(last.boxes ?? []).map((box) => boxRow(box, last.deviceId)));
  }

  return {
    /** Starts asking the box; call once the page is set up. */
    start() {
      clearInterval(timer);
      void refresh();
      timer = setInterval(() => void refresh(), REFRESH_MS);
    },
    /** After a language switch: the same lot in the new words. */
    relabel: render,
  };
}
