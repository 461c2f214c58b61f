import type { DisplayColor, LaneMessageKind, MessageTextOverride } from "./config.js";

/**
 * What the lane shows and says to its driver in each state. Texts are data with
 * placeholders, overridable per device in the config (`options.texts`).
 */
export type LaneMessage =
  | { kind: "idle" }
  | { kind: "welcome"; plate?: string }
  | { kind: "feeDue"; plate?: string; feeFen: number }
  | { kind: "paid"; plate?: string }
  /** Paid on the platform after the lane had asked for cash (a late answer): no cash is due. */
  | { kind: "paidOnline"; plate?: string }
  | { kind: "monthly"; plate?: string; daysLeft: number }
  | { kind: "lotFull"; plate?: string }
  | { kind: "denied"; plate?: string }
  | { kind: "payCash"; plate?: string; feeFen: number }
  | { kind: "attendantCalled"; plate?: string };

export interface MessageText {
  lines: string[];
  /** Empty: nothing is said. */
  voice: string;
  color: DisplayColor;
}

export interface RenderedMessage {
  kind: LaneMessageKind;
  lines: string[];
  voice?: string;
  color: DisplayColor;
}

/**
 * The default catalogue. Lines must fit the board's 32 GBK bytes (16 Chinese characters);
 * longer ones are cut at a character boundary when encoded.
 */
export const defaultMessageTexts: Readonly<Record<LaneMessageKind, MessageText>> = {
  idle: { lines: ["欢迎光临"], voice: "", color: "green" },
  welcome: { lines: ["{plate}", "欢迎光临"], voice: "欢迎光临", color: "green" },
  feeDue: { lines: ["{plate}", "请交费{fee}"], voice: "请交费{feeVoice}", color: "yellow" },
  paid: { lines: ["{plate}", "谢谢 一路顺风"], voice: "谢谢，一路顺风", color: "green" },
  paidOnline: { lines: ["{plate}", "已在线支付", "一路顺风"], voice: "已在线支付，一路顺风", color: "green" },
  monthly: { lines: ["{plate}", "月租车", "剩余{days}天"], voice: "月租车，剩余{days}天", color: "green" },
  lotFull: { lines: ["车位已满"], voice: "车位已满", color: "red" },
  denied: { lines: ["{plate}", "禁止通行"], voice: "禁止通行", color: "red" },
  payCash: { lines: ["{plate}", "请现金缴费{fee}"], voice: "请现金缴费{feeVoice}", color: "yellow" },
  attendantCalled: { lines: ["已呼叫管理员", "请稍候"], voice: "已呼叫管理员，请稍候", color: "yellow" },
};

/** Fen → yuan for the screen, always with two decimals: 1250 → "12.50元". */
export function formatYuan(fen: number): string {
  const total = Math.max(0, Math.round(fen));
  return `${Math.floor(total / 100)}.${String(total % 100).padStart(2, "0")}元`;
}

/** Fen → yuan as the voice board reads it best, no trailing zeros: 1000 → "10元", 1250 → "12.5元". */
export function formatYuanVoice(fen: number): string {
  const total = Math.max(0, Math.round(fen));
  const yuan = Math.floor(total / 100);
  const cents = total % 100;
  if (cents === 0) return `${yuan}元`;
  return `${yuan}.${String(cents).padStart(2, "0").replace(/0$/, "")}元`;
}

function values(message: LaneMessage): Record<string, string> {
  const out: Record<string, string> = { plate: "plate" in message ? (message.plate ?? "") : "" };
  if ("feeFen" in message) {
    out.fee = formatYuan(message.feeFen);
    out.feeVoice = formatYuanVoice(message.feeFen);
  }
  if ("daysLeft" in message) out.days = String(Math.max(0, Math.trunc(message.daysLeft)));
  return out;
}

function fill(template: string, vars: Record<string, string>): string {
  return template.replace(/\{(\w+)\}/g, (whole, name: string) => vars[name] ?? "").trim();
}

/**
 * Renders a message: lines (a line left empty by its placeholders, e.g. {plate} for a car
 * without a plate, is dropped) and the voice text.
 */
export function renderMessage(message: LaneMessage, overrides: Partial<Record<LaneMessageKind, MessageTextOverride>> = {}): RenderedMessage {
  const base = defaultMessageTexts[message.kind];
  const override = overrides[message.kind] ?? {};
  const vars = values(message);
  const lines = (override.lines ?? base.lines).map((line) => fill(line, vars)).filter((line) => line !== "");
  const voice = fill(override.voice ?? base.voice, vars);
  const rendered: RenderedMessage = { kind: message.kind, lines, color: override.color ?? base.color };
  if (voice !== "") rendered.voice = voice;
  return rendered;
}
