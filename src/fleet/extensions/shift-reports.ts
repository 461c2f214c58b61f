import type { Logger } from "../../kernel/log.js";
import type { EventPayload } from "../payloads.js";

/** What this needs of the fleet link: its QoS 1 event path with the disk spool. */
export interface ShiftReportPublisher {
  /** "stopped" before start and after stop: an event published then would be dropped. */
  readonly state: string;
  publishEvent(type: string, data: Record<string, unknown>): EventPayload;
}

/** What this needs of the shift book (src/shifts/shift-book.ts). */
export interface ShiftReportSource<R extends { shiftId: string }> {
  onEnded(listener: (report: R, header: { id: string }) => void): () => void;
  markPublished(id: string): void;
}

export const shiftReportEventType = "shift-report";

/**
 * `evt/shift-report`: every ended shift's report goes to the fleet as an event, so it takes the
 * events' road — numbered (`seq`, `boot`), QoS 1, spooled to disk while the box is offline and
 * sent in order after the next connect. The book marks a report published once the link has
 * taken it; one it never took (the link was not running, a crash in between) is offered again
 * at the next start, so the backend may see a report twice and keys it by `shiftId`.
 */
export function publishShiftReports<R extends { shiftId: string }>(fleet: ShiftReportPublisher, book: ShiftReportSource<R>, log: Logger): () => void {
  return book.onEnded((report, header) => {
    if (fleet.state === "stopped") {
      log.info({ shiftId: header.id }, "fleet link not running; the shift report goes at the next start");
      return;
    }
    try {
      fleet.publishEvent(shiftReportEventType, { ...report });
      book.markPublished(header.id);
    } catch (error) {
      // Kept unpublished: offered again at the next start.
      log.warn({ err: error, shiftId: header.id }, "shift report not handed to the fleet link");
    }
  });
}
