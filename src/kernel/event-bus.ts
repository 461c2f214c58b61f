/**
 * The runtime's event stream: vehicle and barrier events, payments, faults. Every event gets a
 * sequence number and the boot it belongs to (so a backend can see gaps), is kept in a ring
 * for the panel and the `last-events` command, and goes to every listener (history, MQTT,
 * panel). A failing listener is logged by the caller's wrapper and never stops the others.
 */
export interface LaneEvent {
  type: string;
  atMs: number;
  laneId?: string;
  plate?: string;
  recordNo?: string;
  reason?: string;
  feeFen?: number;
  [key: string]: unknown;
}

export interface SequencedEvent extends LaneEvent {
  seq: number;
}

export type EventListener = (event: SequencedEvent) => void;

export class EventBus {
  private seq = 0;
  private readonly ring: SequencedEvent[] = [];
  private readonly listeners = new Set<EventListener>();
  private readonly changeListeners = new Set<() => void>();

  constructor(
    private readonly onListenerError: (error: unknown, event: SequencedEvent) => void,
    private readonly ringSize = 200,
  ) {}

  emit(event: LaneEvent): SequencedEvent {
    const sequenced = { ...event, seq: ++this.seq };
    this.ring.push(sequenced);
    if (this.ring.length > this.ringSize) this.ring.splice(0, this.ring.length - this.ringSize);
    for (const listener of this.listeners) {
      try {
        listener(sequenced);
      } catch (error) {
        this.onListenerError(error, sequenced);
      }
    }
    this.changed();
    return sequenced;
  }

  on(listener: EventListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  last(n: number): SequencedEvent[] {
    return this.ring.slice(-Math.max(0, n));
  }

  /** "Something the status shows has changed" (no payload; readers pull the status). */
  changed(): void {
    for (const listener of this.changeListeners) {
      try {
        listener();
      } catch {
        // A broken panel stream must not affect the lanes.
      }
    }
  }

  onChange(listener: () => void): () => void {
    this.changeListeners.add(listener);
    return () => this.changeListeners.delete(listener);
  }
}
