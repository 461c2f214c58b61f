// The records view: search the stays (plate, fuzzy; time range on the lot's clock; status),
// page through them, and open one stay's whole history (record, bill, settlement, payments,
// reports to the platform and their delivery, what happened). Read-only; asks the box only
// when the attendant searches or opens a stay.
import { yuan, lotTime, duration, describeEvent, lotLocalToMs } from "./format.js";

const PAGE_SIZE = 20;

/**
 * `deps`: `$`, `$$` (queries), `label(group, key)`, `auth()` ({ token }), `zone()` (the lot's
 * time zone), `lang()`, `refusalText(status, error)` (a refusal in the page's language).
 */
export function createRecordsView(deps) {
  const { $ } = deps;
  const r = (key) => deps.label("records", key);
  let page = 1;
  let last = null;
  let lastDetail = null;
  let searched = false;
  let message = null;

  async function get(path) {
    const { token } = deps.auth();
    const res = await fetch(path, { headers: token ? { authorization: `Bearer ${token}` } : {}, cache: "no-store" });
    const body = await res.json().catch(() => ({}));
    return { ok: res.ok, status: res.status, body };
  }

  function say(render, outcome = "") {
    message = render ? { render, outcome } : null;
    const el = $("#rec-result");
    el.textContent = render ? render() : "";
    el.dataset.outcome = outcome;
  }

  function query() {
    const params = new URLSearchParams();
    const plate = $("#rec-plate").value.trim();
    if (plate) params.set("plate", plate);
    // The fields hold wall-clock times; they mean the lot's clock, whatever this computer's zone.
    const from = lotLocalToMs($("#rec-from").value, deps.zone());
    const to = lotLocalToMs($("#rec-to").value, deps.zone());
    if (from !== undefined) params.set("from", String(from));
    if (to !== undefined) params.set("to", String(to));
    const status = $("#rec-status").value;
    if (status) params.set("status", status);
    params.set("page", String(page));
    params.set("pageSize", String(PAGE_SIZE));
    return params;
  }

  async function search(toPage = 1) {
    page = toPage;
    searched = true;
    say(() => r("loading"));
    let answer;
    try {
      answer = await get(`/api/records?${query()}`);
    } catch {
      return say(() => `${deps.label("ui", "failed")}: ${deps.label("ui", "networkError")}`, "error");
    }
    if (!answer.ok) {
      $("#rec-result").title = answer.body?.error?.message ?? "";
      return say(() => deps.refusalText(answer.status, answer.body?.error), "refused");
    }
    $("#rec-result").title = "";
    last = answer.body;
    say(null);
    renderRows();
  }

  function cell(text, key, className = "") {
    const td = document.createElement("td");
    td.textContent = text;
    // The column's name, shown beside the value when the table folds into cards on a phone.
    td.dataset.label = r(key);
    if (className) td.className = className;
    return td;
  }

  function renderRows() {
    const zone = deps.zone();
    const items = last?.items ?? [];
    const rows = items.map((row) => {
      const tr = document.createElement("tr");
      tr.dataset.record = row.recordNo;
      tr.dataset.status = row.status;
      tr.tabIndex = 0;
      const plate = cell(row.plate || "—", "colPlate", "plate");
      if (row.match === "fuzzy") {
        const tag = document.createElement("small");
        tag.className = "pill warn";
        tag.textContent = r("fuzzy");
        plate.append(" ", tag);
      }
      tr.append(
        plate,
        cell(lotTime(row.enterAtMs, zone), "colEnter"),
        cell(row.leaveAtMs === null ? "—" : lotTime(row.leaveAtMs, zone), "colLeave"),
        cell(duration(row.stayMs), "colStay"),
        cell(deps.label("recordStatus", row.status), "colStatus", "status"),
        cell(row.payableFen ? yuan(row.payableFen) : "—", "colDue"),
        cell(row.paidFen ? yuan(row.paidFen) : "—", "colPaid"),
        cell(row.exitLaneId ? `${row.laneId} → ${row.exitLaneId}` : row.laneId, "colLane"),
      );
      const open = () => void showDetail(row.recordNo);
      tr.addEventListener("click", open);
      tr.addEventListener("keydown", (e) => e.key === "Enter" && open());
      return tr;
    });
    if (rows.length === 0 && last) {
      const tr = document.createElement("tr");
      tr.className = "empty";
      const td = document.createElement("td");
      td.colSpan = 8;
      td.textContent = r("none");
      tr.append(td);
      rows.push(tr);
    }
    $("#rec-table tbody").replaceChildren(...rows);
    $("#rec-page").textContent = last ? r("page").replace("{n}", String(last.page)) : "";
    $("#rec-prev").disabled = !last || last.page <= 1;
    $("#rec-next").disabled = !last?.hasMore;
  }

  async function showDetail(recordNo) {
    let answer;
    try {
      answer = await get(`/api/records/${encodeURIComponent(recordNo)}`);
    } catch {
      return say(() => `${deps.label("ui", "failed")}: ${deps.label("ui", "networkError")}`, "error");
    }
    if (!answer.ok) return say(() => deps.refusalText(answer.status, answer.body?.error), "refused");
    lastDetail = answer.body;
    renderDetail();
    $("#rec-detail").hidden = false;
    $("#rec-detail").scrollIntoView({ block: "nearest" });
  }

  function dl(rows) {
    return rows
      .filter(([, value]) => value !== undefined && value !== null && value !== "")
      .flatMap(([name, value]) => {
        const dt = document.createElement("dt");
        dt.textContent = name;
        const dd = document.createElement("dd");
        dd.textContent = value;
        return [dt, dd];
      });
  }

  function li(text, dataset = {}) {
    const item = document.createElement("li");
    item.textContent = text;
    Object.assign(item.dataset, dataset);
    return item;
  }

  function renderDetail() {
    const d = lastDetail;
    if (!d) return;
    const zone = deps.zone();
    const row = d.row;
    const exit = d.settlement;
    $("#rec-detail-no").textContent = d.recordNo;
    const fen = (value) => (typeof value === "number" && value > 0 ? yuan(value) : undefined);
    $("#rec-detail-fields").replaceChildren(
      ...dl([
        [deps.label("records", "colPlate"), row.plate || "—"],
        [r("colStatus"), deps.label("recordStatus", row.status)],
        [r("vehicleType"), deps.label("reason", row.vehicleType)],
        [r("colEnter"), lotTime(row.enterAtMs, zone)],
        [r("entryLane"), row.laneId],
        [r("colLeave"), row.leaveAtMs === null ? undefined : lotTime(row.leaveAtMs, zone)],
        [r("exitLane"), row.exitLaneId ?? undefined],
        [r("colStay"), duration(row.stayMs)],
        [r("bill"), d.bill ? `${yuan(d.bill.dueFen)} (${lotTime(d.bill.atMs, zone)})` : undefined],
        [r("payable"), fen(exit?.payableFen ?? row.payableFen)],
        [r("discount"), fen(exit?.discountFen)],
        [r("prepaid"), fen(exit?.prepaidFen)],
        [r("paidAtExit"), fen(exit?.paidFen)],
        [r("owed"), fen(row.owedFen)],
        [r("exitReason"), exit ? deps.label("exitReason", exit.reason) : undefined],
        [r("operator"), exit?.operator],
        [r("entryReport"), d.reports.entryReport ? deps.label("reportState", d.reports.entryReport) : undefined],
        [r("leaveReport"), d.reports.leaveReport ? deps.label("reportState", d.reports.leaveReport) : undefined],
        [r("recordNo"), d.recordNo],
      ]),
    );
    const payments = d.payments.map((p) => li(`${lotTime(p.payAtMs, zone)} ${yuan(p.amountFen)} ${deps.label("path", p.source)} ${p.orderNo}`, { order: p.orderNo }));
    for (const refund of d.refunds) payments.push(li(`${r("refunds")}: ${yuan(refund.amountFen)} (${refund.state})`));
    $("#rec-detail-payments").replaceChildren(...(payments.length ? payments : [li("—", { empty: "1" })]));
    const reports = d.reports.pending.map((e) =>
      li(`${e.service} · ${deps.label("reportState", e.state)} · ${e.attempts}×${e.lastCode !== undefined ? ` · ${e.lastCode} ${e.platformMsg ?? ""}` : ""}`, { state: e.state }),
    );
    $("#rec-detail-reports").replaceChildren(...(reports.length ? reports : [li(r("pendingNone"), { empty: "1" })]));
    const english = deps.lang() === "en";
    $("#rec-detail-events").replaceChildren(
      ...d.events.map((e) =>
        li(`${lotTime(e.atMs, zone, { date: true }).slice(5)} ${describeEvent({ ...e, atMs: undefined }, { label: deps.label, zone, english }).trim()}`, { type: e.type }),
      ),
    );
  }

  $("#records-form").addEventListener("submit", (event) => {
    event.preventDefault();
    void search(1);
  });
  $("#rec-in-park").addEventListener("click", () => {
    $("#rec-status").value = "in-park";
    void search(1);
  });
  $("#rec-clear").addEventListener("click", () => {
    $("#records-form").reset();
    void search(1);
  });
  $("#rec-prev").addEventListener("click", () => void search(Math.max(1, page - 1)));
  $("#rec-next").addEventListener("click", () => void search(page + 1));
  $("#rec-detail-close").addEventListener("click", () => {
    $("#rec-detail").hidden = true;
    lastDetail = null;
  });

  return {
    /** The view became visible: the first time, the newest stays. */
    shown() {
      $("#rec-zone").textContent = deps.zone();
      if (!searched) void search(1);
    },
    /** The language changed: everything shown is said again. */
    relabel() {
      if (message) say(message.render, message.outcome);
      renderRows();
      renderDetail();
    },
  };
}
