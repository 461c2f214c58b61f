import { z } from "zod";

/** Every state a lane shows its driver (src/io/display/messages.ts renders them). */
export const laneMessageKinds = ["idle", "welcome", "feeDue", "paid", "paidOnline", "monthly", "lotFull", "denied", "payCash", "attendantCalled"] as const;
export type LaneMessageKind = (typeof laneMessageKinds)[number];

export const displayColors = ["red", "green", "yellow"] as const;
export type DisplayColor = (typeof displayColors)[number];

/**
 * A text override for one message. Placeholders: {plate}, {fee} ("12.50元"), {feeVoice}
 * ("12.5元", what the voice board reads well), {days}. `voice: ""` silences that message.
 */
const messageTextSchema = z.strictObject({
  lines: z.array(z.string().max(64)).min(1).max(4).optional(),
  voice: z.string().max(120).optional(),
  color: z.enum(displayColors).optional(),
});
export type MessageTextOverride = z.infer<typeof messageTextSchema>;

/** Options of the LED/voice board of a lane (0x64 frame family, frame.ts). */
export const displayOptionsSchema = z.strictObject({
  /** DA byte of every frame: the board's RS-485 address (0 on a single-board bus). */
  address: z.int().min(0).max(255).default(0),
  /** Boards without a speaker: no 0x30 frames are sent. */
  voice: z.boolean().default(true),
  /** Lines the board shows (0x6E carries at most 4). */
  maxLines: z.int().min(1).max(4).default(4),
  /** Bytes a line holds in GBK (0x6E: at most 32; a Chinese character takes 2). */
  lineBytes: z.int().min(4).max(32).default(32),
  /** The board keeps its own clock (shown when idle); resync this often, 0 = only at connect. */
  timeSyncIntervalS: z
    .int()
    .min(0)
    .max(7 * 86_400)
    .default(3600),
  /** Data of the 0x00 connect frame sent when the link comes up (e.g. "159753"); none if unset. */
  connectData: z.string().max(32).optional(),
  /** Per-message text overrides (configurable texts; defaults in messages.ts). */
  texts: z.partialRecord(z.enum(laneMessageKinds), messageTextSchema).default({}),
});
export type DisplayOptions = z.infer<typeof displayOptionsSchema>;

/** Options of the remaining-spaces sign (frame `0x3A colour count info sum8 0x0A`, spaces-sign.ts). */
export const spacesSignOptionsSchema = z.strictObject({
  /** At or below this many free spaces the sign turns yellow; at 0 red. */
  lowSpaces: z.int().min(0).max(100_000).default(5),
  /** The board-specific info byte of the frame. */
  info: z.int().min(0).max(255).default(0),
});
export type SpacesSignOptions = z.infer<typeof spacesSignOptionsSchema>;
