import type { Clock, TimerHandle } from "../../kernel/clock.js";
import type { Logger } from "../../kernel/log.js";
import type { SerialLink, SerialLinkStatus } from "../serial/serial-link.js";
import { SimSerialLink } from "../serial/sim-serial-link.js";
import type { DisplayColor, DisplayOptions } from "./config.js";
import { FrameDecoder, encodeCommand, localTime, type DisplayCommand } from "./frame.js";
import { renderMessage, type LaneMessage, type RenderedMessage } from "./messages.js";
import { SimDisplayBoard, type ShownMessage } from "./sim-display-board.js";

export interface LaneDisplayStatus {
  device: string;
  laneId: string;
  kind: "display";
  link: SerialLinkStatus;
  shows: number;
  framesWritten: number;
  /** Frames the link refused (link down, write failed). */
  writeErrors: number;
  /** Lines or voice texts cut to fit the board (at a character boundary). */
  truncated: number;
  /** Characters GBK cannot express, sent as "?". */
  unencodableChars: number;
  /** Frames the board sent back, and the bytes of its replies that were not valid frames. */
  replies: { frames: number; badFrames: number; droppedBytes: number };
  lastShown?: { kind: string; lines: string[]; voice?: string; atMs: number };
}

/**
 * The lane's LED and voice board: renders a lane message from the catalogue, encodes it as
 * 0x6E (lines) and 0x30 (voice) frames and writes them to the link. Never throws at the lane:
 * a failed write is counted, logged and reported as `false`.
 */
export class LaneDisplay {
  readonly name: string;
  private readonly log: Logger;
  private readonly replyDecoder = new FrameDecoder();
  private shows = 0;
  private framesWritten = 0;
  private writeErrors = 0;
  private truncated = 0;
  private unencodableChars = 0;
  private lastShown: LaneDisplayStatus["lastShown"];
  private lastWriteErrorLogMs = -Infinity;
  private unsubscribe: Array<() => void> = [];
  private syncTimer: TimerHandle | undefined;
  private running = false;

  constructor(
    readonly laneId: string,
    readonly link: SerialLink,
    private readonly options: DisplayOptions,
    private readonly clock: Clock,
    log: Logger,
    private readonly extra: { timeZone?: string; board?: SimDisplayBoard } = {},
  ) {
    this.name = link.name;
    this.log = log.child({ device: link.name, laneId });
  }

  /** The simulated board on the other end, when the link is simulated. */
  get board(): SimDisplayBoard | undefined {
    return this.extra.board;
  }

  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    this.unsubscribe.push(this.link.onData((chunk) => this.replyDecoder.push(chunk)));
    await this.link.open();
    let wasUp = this.link.status().state === "up";
    if (wasUp) await this.greet();
    // A board that was unplugged lost its clock: greet it again whenever the link comes back.
    this.unsubscribe.push(
      this.link.onStateChange((status) => {
        const up = status.state === "up";
        if (up && !wasUp) void this.greet();
        wasUp = up;
      }),
    );
    this.scheduleSync();
  }

  async stop(): Promise<void> {
    this.running = false;
    for (const off of this.unsubscribe) off();
    this.unsubscribe = [];
    if (this.syncTimer) this.clock.clearTimeout(this.syncTimer);
    this.syncTimer = undefined;
    await this.link.close();
  }

  /** Renders and shows a lane message (lines, then voice). */
  async show(message: LaneMessage): Promise<boolean> {
    const rendered = renderMessage(message, this.options.texts);
    return this.showRendered(rendered);
  }

  async showRendered(rendered: RenderedMessage): Promise<boolean> {
    this.shows++;
    const lines = rendered.lines.slice(0, this.options.maxLines);
    if (lines.length < rendered.lines.length) this.truncated++;
    let ok = await this.send({ cmd: "lines", lines: lines.map((text) => ({ text, color: rendered.color })) });
    if (rendered.voice !== undefined && this.options.voice) ok = (await this.send({ cmd: "voice", text: rendered.voice })) && ok;
    const last: NonNullable<LaneDisplayStatus["lastShown"]> = { kind: rendered.kind, lines, atMs: this.clock.now() };
    if (rendered.voice !== undefined) last.voice = rendered.voice;
    this.lastShown = last;
    return ok;
  }

  /** One temporary line (0x62). */
  async showLine(line: number, text: string, color?: DisplayColor): Promise<boolean> {
    return this.send(color ? { cmd: "line", line, text, color } : { cmd: "line", line, text });
  }

  /** Sets the board's clock to the lot's local time (0x05). */
  async syncTime(): Promise<boolean> {
    return this.send({ cmd: "time", time: localTime(this.clock.now(), this.extra.timeZone ?? "Asia/Shanghai") });
  }

  /** What the simulated board showed; empty for a real board. */
  shown(): ShownMessage[] {
    return this.extra.board?.shown() ?? [];
  }

  status(): LaneDisplayStatus {
    const status: LaneDisplayStatus = {
      device: this.name,
      laneId: this.laneId,
      kind: "display",
      link: this.link.status(),
      shows: this.shows,
      framesWritten: this.framesWritten,
      writeErrors: this.writeErrors,
      truncated: this.truncated,
      unencodableChars: this.unencodableChars,
      replies: { ...this.replyDecoder.counts },
    };
    if (this.lastShown) status.lastShown = { ...this.lastShown, lines: [...this.lastShown.lines] };
    return status;
  }

  private async send(command: DisplayCommand): Promise<boolean> {
    let frame: Buffer;
    try {
      const encoded = encodeCommand(this.options.address, command, { lineBytes: this.options.lineBytes });
      if (encoded.truncated) this.truncated++;
      this.unencodableChars += encoded.unencodable;
      frame = encoded.frame;
    } catch (error) {
      this.writeErrors++;
      this.log.warn({ err: error, cmd: command.cmd }, "display command cannot be encoded");
      return false;
    }
    try {
      await this.link.write(frame);
      this.framesWritten++;
      return true;
    } catch (error) {
      this.writeErrors++;
      const now = this.clock.now();
      // While the board is unplugged every message fails: one line per minute is enough.
      if (now - this.lastWriteErrorLogMs >= 60_000) {
        this.log.warn({ err: error, cmd: command.cmd, writeErrors: this.writeErrors }, "display write failed");
        this.lastWriteErrorLogMs = now;
      }
      return false;
    }
  }

  /** On every link up: the connect frame (when configured) and the time. */
  private async greet(): Promise<void> {
    if (!this.running) return;
    if (this.options.connectData !== undefined) await this.send({ cmd: "connect", data: this.options.connectData });
    await this.syncTime();
  }

  private scheduleSync(): void {
    if (this.options.timeSyncIntervalS <= 0 || !this.running) return;
    this.syncTimer = this.clock.setTimeout(() => {
      if (!this.running) return;
      void this.syncTime().finally(() => this.scheduleSync());
    }, this.options.timeSyncIntervalS * 1000);
  }
}

/** Builds a lane display; on a simulated link it also attaches the simulated board. */
export function createLaneDisplay(laneId: string, link: SerialLink, options: DisplayOptions, clock: Clock, log: Logger, timeZone = "Asia/Shanghai"): LaneDisplay {
  const board = link instanceof SimSerialLink ? new SimDisplayBoard(link, { address: options.address }) : undefined;
  return new LaneDisplay(laneId, link, options, clock, log, board ? { timeZone, board } : { timeZone });
}
