// The shift card: start and end the attendant's shift, its running totals, the refunds owed
// with a "refunded" button each, and a link to the printable report. The status stream says
// whether a shift is open; the totals are fetched from GET /api/shift only when the stream
// shows something new (an event, a shift started or ended), so an idle page asks nothing.
import { yuan, lotTime, listOrEmpty } from "./format.js";

/**
 * `deps`: `$` (query), `label(group, key)`, `auth()` ({ token, operator }), `post(path, body,
 * card, doneText)` (the page's action sender; `doneText` a function, so a language switch re-says it), `zone()` (the lot's time zone), `lang()`.
 */
export function createShiftView(deps) {
  const { $ } = deps;
  const card = $("#shift");
  const s = (key) => deps.label("shift", key);
  let report = null;
  let lastKey = "";
  let timer;
  let inFlight = false;
  let again = false;

  const withToken = (path) => {
    const { token } = deps.auth();
    const sep = path.includes("?") ? "&" : "?";
    return token ? `${path}${sep}access_token=${encodeURIComponent(token)}` : path;
  };
  const printHref = (id) => withToken(`/api/shifts/${encodeURIComponent(id)}/print?lang=${deps.lang()}`);

  async function refresh() {
    if (inFlight) {
      again = true;
      return;
    }
    inFlight = true;
    try {
      const { token } = deps.auth();
      const res = await fetch("/api/shift", { headers: token ? { authorization: `Bearer ${token}` } : {}, cache: "no-store" });
      if (res.ok) {
        const body = await res.json();
        report = body.report ?? null;
        render();
      }
    } catch {
      // The stream's own reconnect shows that the box is away.
    } finally {
      inFlight = false;
      if (again) {
        again = false;
        schedule(0);
      }
    }
  }

  function schedule(delayMs = 300) {
    clearTimeout(timer);
    timer = setTimeout(() => void refresh(), delayMs);
  }

  function row(name, value, key, state = "") {
    const dt = document.createElement("dt");
    dt.textContent = name;
    const dd = document.createElement("dd");
    dd.textContent = value;
    dd.dataset.key = key;
    if (state) dd.dataset.state = state;
    return [dt, dd];
  }

  function renderRefunds() {
    const owed = report ? [...report.refunds.found.items, ...report.refunds.carried.items].filter((r) => r.owedAtEnd) : [];
    const items = owed.map((r) => {
      const li = document.createElement("li");
      li.dataset.refund = r.id;
      const text = document.createElement("span");
      const earlier = report.refunds.carried.items.some((c) => c.id === r.id) ? ` (${s("carried")})` : "";
      text.textContent = `${lotTime(r.foundAtMs, deps.zone(), { date: false })} ${r.plate} ${yuan(r.amountFen)} ${deps.label("path", r.refundVia)}${earlier} `;
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = s("refunded");
      button.addEventListener("click", async () => {
        if (button.disabled) return;
        button.disabled = true;
        const ok = await deps.post(
          `/api/refunds/${encodeURIComponent(r.id)}/refunded`,
          { operator: deps.auth().operator || "panel" },
          card,
          () => `${s("refunded")}: ${r.plate} ${yuan(r.amountFen)}`,
        );
        if (ok) schedule(0);
        else button.disabled = false;
      });
      li.append(text, button);
      return li;
    });
    $("#shift-refunds").replaceChildren(...listOrEmpty(items, s("noRefunds")));
  }

  function render() {
    const open = Boolean(report && report.endedAtMs === null);
    $("#shift-none").hidden = open;
    $("#shift-open").hidden = !open;
    card.dataset.open = open ? "1" : "0";
    if (open) {
      const rows = [
        ...row(s("operator"), report.operator, "operator"),
        ...row(s("started"), lotTime(report.startedAtMs, deps.zone()), "started"),
        ...row(s("cash"), `${report.cash.count} · ${yuan(report.cash.totalFen)}`, "cash"),
      ];
      for (const lane of report.cash.lanes)
        if (lane.count > 0) rows.push(...row(`${s("cashLane")}${lane.laneId}`, `${lane.count} · ${yuan(lane.totalFen)}`, `cash-${lane.laneId}`));
      rows.push(
        ...row(s("releases"), `${report.releases.count} · ${yuan(report.releases.dueFen)}`, "releases"),
        ...row(s("opens"), String(report.opens.count), "opens"),
        ...row(s("refundsOwed"), `${report.refunds.owedAtEnd.count} · ${yuan(report.refunds.owedAtEnd.totalFen)}`, "refunds", report.refunds.owedAtEnd.count ? "warn" : "ok"),
        ...row(s("drawer"), yuan(report.drawerFen), "drawer"),
      );
      $("#shift-totals").replaceChildren(...rows);
      $("#shift-print").href = printHref(report.shiftId);
    }
    renderRefunds();
  }

  function renderLast(last) {
    const el = $("#shift-last");
    el.hidden = !last;
    if (!last) return;
    $("#shift-last-text").textContent =
      `${s("lastEnded")} ${last.id} · ${s("ended")} ${lotTime(last.endedAtMs, deps.zone())} · ${s("cash")} ${yuan(last.totals.cashFen)} · ${s("refundsOwed")} ${yuan(last.totals.refundsOwedFen)}`;
    $("#shift-last-print").href = printHref(last.id);
  }

  $("#shift-start").addEventListener("click", async (event) => {
    const button = event.currentTarget;
    button.disabled = true;
    try {
      const ok = await deps.post("/api/shift/start", { operator: deps.auth().operator || "panel" }, card, () => s("startedOk"));
      if (ok) schedule(0);
    } finally {
      button.disabled = false;
    }
  });
  $("#shift-end").addEventListener("click", async (event) => {
    const button = event.currentTarget;
    button.disabled = true;
    try {
      const ok = await deps.post("/api/shift/end", { operator: deps.auth().operator || "panel" }, card, () => s("endedOk"));
      if (ok) {
        report = null;
        render();
        renderLast(ok.shift);
      }
    } finally {
      button.disabled = false;
    }
  });

  return {
    /** Called with every status: fetches the running totals when something may have changed. */
    update(status) {
      const shift = status.shift ?? {};
      renderLast(shift.lastEnded ?? null);
      if (!shift.open) {
        if (report) {
          report = null;
          render();
        } else {
          $("#shift-none").hidden = false;
          $("#shift-open").hidden = true;
        }
        lastKey = "";
        return;
      }
      // The newest event's number changes with every payment, release or refund found.
      const newest = (status.events ?? []).at(-1)?.seq ?? 0;
      const key = `${shift.open.id}:${newest}`;
      if (key !== lastKey) {
        lastKey = key;
        schedule(report ? 300 : 0);
      }
    },
    /** The language changed: labels again. */
    relabel() {
      render();
    },
  };
}
