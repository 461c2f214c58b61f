// Keyboard shortcuts for the two things an attendant does all day, without the mouse: F8 cash
// received, F9 open (with the reason picked or typed on the card; without one the card asks for
// it). They press the card's own buttons, so the one-press-one-request guard holds.

const keys = { F8: "cash-paid", F9: "open" };

/**
 * `deps`: `$` (query), `lanes()` (the lanes of the last status), `enabled()` (the lanes are on
 * screen), `unavailable(card)` (says on the card that there is nothing to act on).
 */
export function createShortcuts(deps) {
  const { $ } = deps;
  /** The lane last touched (clicked, or a field of its card focused). */
  let touchedId = "";

  /**
   * The lane a shortcut acts on: the card the keyboard is in; else the car waiting to pay (what
   * the attendant is looking at); else the lane last touched; else the first exit.
   */
  function laneFor(command) {
    const lanes = deps.lanes().filter((l) => command !== "cash-paid" || l.direction === "out");
    const focused = document.activeElement?.closest?.(".lane")?.dataset.lane;
    return (
      lanes.find((l) => l.id === focused) ??
      lanes.find((l) => l.phase === "awaitingPayment") ??
      lanes.find((l) => l.id === touchedId) ??
      lanes.find((l) => l.direction === "out") ??
      lanes[0]
    );
  }

  document.addEventListener("keydown", (event) => {
    const command = keys[event.key];
    if (!command || event.altKey || event.ctrlKey || event.metaKey || !deps.enabled()) return;
    const lane = laneFor(command);
    if (!lane) return;
    event.preventDefault();
    touchedId = lane.id;
    const card = document.getElementById(`lane-${lane.id}`);
    const button = card && $(`[data-command="${command}"]`, card);
    if (!button) return;
    if (button.disabled) {
      // Busy with the previous press, or (cash) no car waiting to pay.
      if (!button.dataset.busy) deps.unavailable(card);
      return;
    }
    button.click();
  });

  return {
    touched(laneId) {
      touchedId = laneId;
    },
  };
}
