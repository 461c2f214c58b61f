import type { Clock, TimerHandle } from "../kernel/clock.js";
import type { Component } from "../kernel/lifecycle.js";
import type { SpacesSign } from "../io/display/spaces-sign.js";
import type { LotStore } from "../store/lot-store.js";

/** Changes within this long go to the signs as one write (a lot's retained burst is hundreds). */
const SIGN_SETTLE_MS = 100;

/**
 * Keeps the remaining-spaces signs on the lot's free spaces: at start, and after every change
 * of the in-park set — this box's cars and, with `lot.share`, the other boxes' cars written
 * here — so every gate's sign shows the same count within a second.
 */
export function spacesSignsDriver(signs: readonly SpacesSign[], store: LotStore, freeSpaces: () => number, clock: Clock): Component {
  let timer: TimerHandle | undefined;
  let unsubscribe: (() => void) | undefined;
  const show = (): void => {
    timer = undefined;
    const free = freeSpaces();
    // A refused write is counted and logged by the sign; the next change writes again.
    for (const sign of signs) void sign.show(free);
  };
  return {
    name: "spaces-signs",
    async start() {
      if (signs.length === 0) return;
      unsubscribe = store.onInParkChange(() => {
        timer ??= clock.setTimeout(show, SIGN_SETTLE_MS);
      });
      show();
    },
    async stop() {
      unsubscribe?.();
      unsubscribe = undefined;
      if (timer) clock.clearTimeout(timer);
      timer = undefined;
    },
  };
}
