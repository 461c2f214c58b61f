/**
 * Stay durations that survive a wrong clock (systemd/README.md "Clock"). A Pi has no RTC: until NTP syncs,
 * the wall clock is whatever fake-hwclock saved (or 1970), and an NTP step can move it by
 * hours. A duration computed across such a jump is nonsense; a fee computed from it is a
 * complaint. This pure helper never returns a negative or absurd duration and says why it
 * changed one, so the lane code can flag the record for the attendant and the platform.
 */

export type StayClampReason =
  /** A timestamp is not a finite number. */
  | "invalid"
  /** A timestamp lies before `minPlausibleEpochMs`: the clock was not set when it was taken. */
  | "implausible-time"
  /** Leave is before enter: the clock stepped backwards in between. */
  | "negative"
  /** Wall-clock and monotonic durations disagree: the clock stepped in between; monotonic wins. */
  | "clock-jump"
  /** Longer than `maxStayMs`: clamped. */
  | "exceeds-max";

export interface StayClampOptions {
  /** The longest stay the lot believes in; longer ones are clamped to it. */
  maxStayMs: number;
  /**
   * Timestamps before this are from an unset clock. Default 2020-01-01T00:00:00Z: every box
   * was built later, and an unset Pi starts at 1970 or at the last fake-hwclock save.
   */
  minPlausibleEpochMs?: number;
  /**
   * Monotonic readings taken with the two timestamps in the same boot (Clock.monotonicMs).
   * When given, they are the truth for the duration: a wall-clock step cannot move them.
   */
  monotonic?: { enterMs: number; leaveMs: number };
  /** Wall and monotonic durations may differ by this much before it counts as a jump. */
  jumpToleranceMs?: number;
}

export interface ClampedStay {
  /** 0 ≤ durationMs ≤ maxStayMs, always an integer. */
  durationMs: number;
  /** Why the duration is not simply leave − enter; undefined when it is. */
  flagged: StayClampReason | undefined;
}

export const DEFAULT_MIN_PLAUSIBLE_EPOCH_MS = Date.UTC(2020, 0, 1);
const DEFAULT_JUMP_TOLERANCE_MS = 2000;

export function clampStay(enterAtMs: number, leaveAtMs: number, options: StayClampOptions): ClampedStay {
  const maxStayMs = Number.isFinite(options.maxStayMs) && options.maxStayMs > 0 ? Math.floor(options.maxStayMs) : 0;
  const floorMs = options.minPlausibleEpochMs ?? DEFAULT_MIN_PLAUSIBLE_EPOCH_MS;
  const toleranceMs = options.jumpToleranceMs ?? DEFAULT_JUMP_TOLERANCE_MS;
  const clamp = (ms: number): number => Math.min(maxStayMs, Math.max(0, Math.round(ms)));

  const mono = options.monotonic;
  const monoMs = mono && Number.isFinite(mono.enterMs) && Number.isFinite(mono.leaveMs) && mono.leaveMs >= mono.enterMs ? mono.leaveMs - mono.enterMs : undefined;

  // With both ends measured on the monotonic clock, that duration is right whatever the wall
  // clock did; only its size still needs the cap.
  if (monoMs !== undefined) {
    const wallMs = leaveAtMs - enterAtMs;
    const jumped = !Number.isFinite(wallMs) || Math.abs(wallMs - monoMs) > toleranceMs;
    if (monoMs > maxStayMs) return { durationMs: maxStayMs, flagged: "exceeds-max" };
    return { durationMs: clamp(monoMs), flagged: jumped ? "clock-jump" : undefined };
  }

  if (!Number.isFinite(enterAtMs) || !Number.isFinite(leaveAtMs)) return { durationMs: 0, flagged: "invalid" };
  if (enterAtMs < floorMs || leaveAtMs < floorMs) {
    // One end was taken on an unset clock: the difference means nothing. Charge nothing
    // automatically; the flag sends the record to a person.
    return { durationMs: 0, flagged: "implausible-time" };
  }
  const wallMs = leaveAtMs - enterAtMs;
  if (wallMs < 0) return { durationMs: 0, flagged: "negative" };
  if (wallMs > maxStayMs) return { durationMs: maxStayMs, flagged: "exceeds-max" };
  return { durationMs: clamp(wallMs), flagged: undefined };
}
