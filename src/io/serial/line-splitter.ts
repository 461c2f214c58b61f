/**
 * Splits a serial byte stream into lines without ever losing sync. CR, LF and CR LF all end
 * a line (cameras and scanner guns differ, and some are configured either way); empty lines
 * are skipped. A line longer than `maxLineBytes` is noise: its bytes are dropped up to the
 * next terminator and reported once, so the line after it parses normally.
 */
export interface LineSink {
  line(bytes: Buffer): void;
  /** A line exceeded the cap; `droppedBytes` were discarded. */
  overflow(droppedBytes: number): void;
}

export class LineSplitter {
  private readonly buffer: Buffer;
  private length = 0;
  private overflowing = false;
  private dropped = 0;

  constructor(readonly maxLineBytes: number) {
    this.buffer = Buffer.alloc(maxLineBytes);
  }

  push(chunk: Uint8Array, sink: LineSink): void {
    let start = 0;
    for (let i = 0; i < chunk.length; i++) {
      const byte = chunk[i]!;
      if (byte !== 0x0a && byte !== 0x0d) continue;
      this.append(chunk, start, i);
      this.endLine(sink);
      start = i + 1;
    }
    this.append(chunk, start, chunk.length);
  }

  /** Bytes held for an unfinished line. */
  pending(): number {
    return this.overflowing ? 0 : this.length;
  }

  reset(): void {
    this.length = 0;
    this.overflowing = false;
    this.dropped = 0;
  }

  private append(chunk: Uint8Array, from: number, to: number): void {
    const count = to - from;
    if (count <= 0) return;
    if (this.overflowing) {
      this.dropped += count;
      return;
    }
    if (this.length + count > this.maxLineBytes) {
      this.overflowing = true;
      this.dropped = this.length + count;
      this.length = 0;
      return;
    }
    this.buffer.set(chunk.subarray(from, to), this.length);
    this.length += count;
  }

  private endLine(sink: LineSink): void {
    if (this.overflowing) {
      const dropped = this.dropped;
      this.overflowing = false;
      this.dropped = 0;
      sink.overflow(dropped);
      return;
    }
    if (this.length === 0) return;
    const line = Buffer.from(this.buffer.subarray(0, this.length));
    this.length = 0;
    sink.line(line);
  }
}
