import type { SimSerialLink } from "../serial/sim-serial-link.js";
import type { DisplayColor } from "./config.js";
import { FrameDecoder, interpretFrame, type DisplayCommand, type LocalTime } from "./frame.js";

/** What a driver saw and heard at one moment. */
export interface ShownMessage {
  atMs: number;
  lines: string[];
  color?: DisplayColor;
  voice?: string;
}

/**
 * The simulated LED/voice board: reads the frames the box writes to a `SimSerialLink`,
 * validates them like the board (CRC, address) and records what a driver would see and
 * hear. Tests and the demo read `shown()`.
 */
export class SimDisplayBoard {
  private readonly decoder = new FrameDecoder();
  private screen: string[] = [];
  private screenColor: DisplayColor | undefined;
  private history: ShownMessage[] = [];
  private commands: DisplayCommand[] = [];
  private clock: LocalTime | undefined;
  private connectData: string | undefined;
  private otherAddress = 0;
  private readonly detachLink: () => void;

  constructor(
    link: SimSerialLink,
    private readonly options: { address?: number; historyLimit?: number } = {},
  ) {
    this.detachLink = link.onWrite((bytes, atMs) => this.receive(bytes, atMs));
  }

  /** Messages shown, oldest first (a voice said with a screen is attached to it). */
  shown(): ShownMessage[] {
    return this.history.map((m) => ({ ...m, lines: [...m.lines] }));
  }

  /** The lines on the board now. */
  currentLines(): string[] {
    return [...this.screen];
  }

  /** Every command received, decoded (time syncs and connects included). */
  received(): DisplayCommand[] {
    return [...this.commands];
  }

  boardTime(): LocalTime | undefined {
    return this.clock;
  }

  lastConnect(): string | undefined {
    return this.connectData;
  }

  counts(): { frames: number; badFrames: number; droppedBytes: number; otherAddress: number } {
    return { ...this.decoder.counts, otherAddress: this.otherAddress };
  }

  clear(): void {
    this.history = [];
    this.commands = [];
  }

  detach(): void {
    this.detachLink();
  }

  private receive(bytes: Buffer, atMs: number): void {
    for (const frame of this.decoder.push(bytes)) {
      if (frame.address !== (this.options.address ?? 0)) {
        this.otherAddress++;
        continue;
      }
      const command = interpretFrame(frame);
      this.commands.push(command);
      if (this.commands.length > (this.options.historyLimit ?? 1000)) this.commands.shift();
      this.apply(command, atMs);
    }
  }

  private apply(command: DisplayCommand, atMs: number): void {
    switch (command.cmd) {
      case "lines":
        this.screen = command.lines.map((l) => l.text);
        this.screenColor = command.lines[0]?.color;
        this.record({ atMs, lines: [...this.screen] });
        break;
      case "line": {
        while (this.screen.length <= command.line) this.screen.push("");
        this.screen[command.line] = command.text;
        if (command.color) this.screenColor = command.color;
        this.record({ atMs, lines: [...this.screen] });
        break;
      }
      case "voice": {
        const last = this.history.at(-1);
        if (last && last.atMs === atMs && last.voice === undefined) last.voice = command.text;
        else this.record({ atMs, lines: [...this.screen], voice: command.text });
        break;
      }
      case "time":
        this.clock = command.time;
        break;
      case "connect":
        this.connectData = command.data;
        break;
      default:
        break;
    }
  }

  private record(message: ShownMessage): void {
    if (this.screenColor !== undefined && message.color === undefined) message.color = this.screenColor;
    this.history.push(message);
    if (this.history.length > (this.options.historyLimit ?? 1000)) this.history.shift();
  }
}
