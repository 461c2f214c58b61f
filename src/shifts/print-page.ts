import { createHash } from "node:crypto";
import { formatWireTime } from "../platform/wire.js";
import { formatFen as yuanText } from "../core/fees/money.js";
import type { ShiftReport } from "./shift-report.js";

/**
 * The shift report as a page to print and sign (A4, black on white), in the lot's time zone.
 * One self-contained document: no script, one inline style allowed by its hash, so the page's
 * content-security policy can forbid everything else.
 */

const style = `
body { font: 12pt/1.4 "Noto Sans CJK SC", "WenQuanYi Zen Hei", "Microsoft YaHei", sans-serif; color: #000; margin: 16mm; }
h1 { font-size: 16pt; margin: 0 0 4mm; } h2 { font-size: 13pt; margin: 6mm 0 2mm; border-bottom: 1px solid #000; }
table { border-collapse: collapse; width: 100%; } th, td { border: 1px solid #555; padding: 1mm 2mm; text-align: left; vertical-align: top; }
td.fen, th.fen { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 1mm 6mm; margin: 0; } dt { font-weight: bold; } dd { margin: 0; }
tfoot td { font-weight: bold; } .sign { margin-top: 14mm; display: flex; gap: 30mm; } .sign span { border-top: 1px solid #000; padding-top: 1mm; min-width: 50mm; }
@media print { body { margin: 0; } @page { size: A4; margin: 14mm; } }
`;
const styleHash = createHash("sha256").update(style).digest("base64");

/** Headers of the page: nothing may load, nothing may run, nobody may frame it. */
export const printPageHeaders: Readonly<Record<string, string>> = {
  "content-type": "text/html; charset=utf-8",
  "cache-control": "no-store",
  "content-security-policy": `default-src 'none'; style-src 'sha256-${styleHash}'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'`,
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "referrer-policy": "no-referrer",
};

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);
}

export type PrintLanguage = "zh" | "en";

const words = {
  zh: {
    title: "交班报表",
    lot: "停车场",
    box: "控制器",
    operator: "值班员",
    endedBy: "交班人",
    start: "上班",
    end: "下班",
    open: "（未交班）",
    zone: "时区",
    lanes: "各车道合计",
    lane: "车道",
    cashCount: "现金笔数",
    cash: "现金（元）",
    releases: "人工放行",
    releasesDue: "放行未收（元）",
    opens: "手动开闸",
    total: "合计",
    cashItems: "现金明细",
    time: "时间",
    plate: "车牌",
    record: "停车记录",
    amount: "金额（元）",
    who: "操作员",
    path: "方式",
    releaseItems: "人工放行明细",
    reason: "原因",
    due: "应缴（元）",
    openItems: "手动开闸明细",
    refunds: "应退款（重复支付）",
    found: "本班发现",
    carried: "前班未退",
    refundVia: "退款方式",
    state: "状态",
    owed: "未退",
    refunded: "已退",
    owedAtEnd: "交班时仍欠",
    refundedInShift: "本班已退",
    drawer: "钱箱应有现金（元）",
    none: "无",
    signOperator: "值班员签字",
    signChecker: "复核人签字",
    via: { cash: "现金", platform: "平台" },
  },
  en: {
    title: "Shift report",
    lot: "Lot",
    box: "Box",
    operator: "Attendant",
    endedBy: "Ended by",
    start: "Start",
    end: "End",
    open: "(still open)",
    zone: "Time zone",
    lanes: "Totals per lane",
    lane: "Lane",
    cashCount: "Cash payments",
    cash: "Cash (yuan)",
    releases: "Hand releases",
    releasesDue: "Released unpaid (yuan)",
    opens: "Hand opens",
    total: "Total",
    cashItems: "Cash taken",
    time: "Time",
    plate: "Plate",
    record: "Stay",
    amount: "Amount (yuan)",
    who: "Operator",
    path: "Path",
    releaseItems: "Hand releases",
    reason: "Reason",
    due: "Due (yuan)",
    openItems: "Hand opens",
    refunds: "Refunds owed (paid twice)",
    found: "Found this shift",
    carried: "Owed from earlier shifts",
    refundVia: "Refund via",
    state: "State",
    owed: "owed",
    refunded: "refunded",
    owedAtEnd: "Still owed at the end",
    refundedInShift: "Refunded this shift",
    drawer: "Cash the drawer should hold (yuan)",
    none: "none",
    signOperator: "Attendant's signature",
    signChecker: "Checked by",
    via: { cash: "cash", platform: "platform" },
  },
} as const;

export function renderPrintPage(report: ShiftReport, lang: PrintLanguage = "zh"): string {
  const w = words[lang];
  const tz = report.lot.timeZone;
  const time = (ms: number) => escapeHtml(formatWireTime(ms, tz));
  const e = escapeHtml;
  const table = (head: string[], rows: string[][], foot?: string[]): string => {
    if (rows.length === 0) return `<p>${e(w.none)}</p>`;
    const cell = (tag: "td" | "th", value: string, i: number, fenCols: ReadonlySet<number>) => `<${tag}${fenCols.has(i) ? ' class="fen"' : ""}>${value}</${tag}>`;
    const fenCols = new Set(head.map((h, i) => (h.includes("（元）") || h.includes("(yuan)") ? i : -1)).filter((i) => i >= 0));
    return `<table><thead><tr>${head.map((h, i) => cell("th", e(h), i, fenCols)).join("")}</tr></thead><tbody>${rows
      .map((r) => `<tr>${r.map((v, i) => cell("td", v, i, fenCols)).join("")}</tr>`)
      .join("")}</tbody>${foot ? `<tfoot><tr>${foot.map((v, i) => cell("td", v, i, fenCols)).join("")}</tr></tfoot>` : ""}</table>`;
  };
  const refundRows = (items: ShiftReport["refunds"]["found"]["items"]) =>
    items.map((r) => [
      time(r.foundAtMs),
      e(r.laneId),
      e(r.plate),
      e(r.recordNo),
      yuanText(r.amountFen),
      e(w.via[r.refundVia]),
      e(r.owedAtEnd ? w.owed : `${w.refunded} ${r.refundedBy ?? ""}`.trim()),
    ]);
  const refundHead = [w.time, w.lane, w.plate, w.record, w.amount, w.refundVia, w.state];

  const lanesById = new Map(report.releases.lanes.map((l) => [l.laneId, l]));
  const opensById = new Map(report.opens.lanes.map((l) => [l.laneId, l]));
  return `<!doctype html>
<html lang="${lang === "zh" ? "zh-CN" : "en"}"><head><meta charset="utf-8"><title>${e(w.title)} ${e(report.shiftId)}</title><style>${style}</style></head>
<body>
<h1>${e(w.title)} · ${e(report.shiftId)}</h1>
<dl>
<dt>${e(w.lot)}</dt><dd>${e(report.lot.name)} (${e(report.lot.parkCode)})</dd>
<dt>${e(w.box)}</dt><dd>${e(report.deviceId)}</dd>
<dt>${e(w.operator)}</dt><dd id="operator">${e(report.operator)}</dd>
${report.endedBy && report.endedBy !== report.operator ? `<dt>${e(w.endedBy)}</dt><dd>${e(report.endedBy)}</dd>` : ""}
<dt>${e(w.start)}</dt><dd id="started">${time(report.startedAtMs)}</dd>
<dt>${e(w.end)}</dt><dd id="ended">${report.endedAtMs === null ? `${time(report.asOfMs)} ${e(w.open)}` : time(report.endedAtMs)}</dd>
<dt>${e(w.zone)}</dt><dd>${e(tz)}</dd>
<dt>${e(w.drawer)}</dt><dd id="drawer">${yuanText(report.drawerFen)}</dd>
</dl>
<h2>${e(w.lanes)}</h2>
${table(
  [w.lane, w.cashCount, w.cash, w.releases, w.releasesDue, w.opens],
  report.cash.lanes.map((l) => [
    e(l.laneId),
    String(l.count),
    yuanText(l.totalFen),
    String(lanesById.get(l.laneId)?.count ?? 0),
    yuanText(lanesById.get(l.laneId)?.dueFen ?? 0),
    String(opensById.get(l.laneId)?.count ?? 0),
  ]),
  [
    e(w.total),
    String(report.cash.count),
    `<span id="cash-total">${yuanText(report.cash.totalFen)}</span>`,
    String(report.releases.count),
    yuanText(report.releases.dueFen),
    String(report.opens.count),
  ],
)}
<h2>${e(w.cashItems)}</h2>
${table(
  [w.time, w.lane, w.plate, w.record, w.amount, w.who, w.path],
  report.cash.items.map((i) => [time(i.atMs), e(i.laneId), e(i.plate), e(i.recordNo), yuanText(i.amountFen), e(i.operator), e(i.path)]),
  [e(w.total), "", "", "", yuanText(report.cash.totalFen), "", ""],
)}
<h2>${e(w.releaseItems)}</h2>
${table(
  [w.time, w.lane, w.plate, w.record, w.due, w.who, w.reason],
  report.releases.items.map((i) => [time(i.atMs), e(i.laneId), e(i.plate), e(i.recordNo), yuanText(i.dueFen), e(i.operator), e(i.reason)]),
)}
<h2>${e(w.openItems)}</h2>
${table(
  [w.time, w.lane, w.plate, w.who, w.reason],
  report.opens.items.map((i) => [time(i.atMs), e(i.laneId), e(i.plate), e(i.operator), e(i.reason)]),
)}
<h2>${e(w.refunds)}</h2>
<h3>${e(w.found)}</h3>
${table(refundHead, refundRows(report.refunds.found.items))}
<h3>${e(w.carried)}</h3>
${table(refundHead, refundRows(report.refunds.carried.items))}
<dl>
<dt>${e(w.owedAtEnd)}</dt><dd id="refunds-owed">${report.refunds.owedAtEnd.count} · ${yuanText(report.refunds.owedAtEnd.totalFen)}</dd>
<dt>${e(w.refundedInShift)}</dt><dd>${report.refunds.refundedInShift.count} · ${yuanText(report.refunds.refundedInShift.totalFen)}</dd>
</dl>
<div class="sign"><span>${e(w.signOperator)}</span><span>${e(w.signChecker)}</span></div>
</body></html>
`;
}
