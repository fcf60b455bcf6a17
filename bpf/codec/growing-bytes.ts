// A byte buffer that grows as it is written, little-endian: the one writer under the kf_run
// programs (bpf/kernel/whole-cases.ts), the observation records (bpf/runner/observations.ts) and
// the batches of cases sent to the kernel worker and the VM run thread (bpf/codec/case-wire.ts).

export class GrowingBytes {
  protected buf: Uint8Array;
  protected view: DataView;
  /** Where the next byte goes: the bytes written are buf[0, at). */
  protected at = 0;

  constructor(size: number) {
    this.buf = new Uint8Array(size);
    this.view = new DataView(this.buf.buffer);
  }

  /** Makes room for `n` more bytes (copying what was written into a buffer twice as large, or more). */
  room(n: number): void {
    if (this.at + n <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.at + n));
    next.set(this.buf.subarray(0, this.at));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  /** The bytes written, as a view: valid until the next write. */
  written(): Uint8Array {
    return this.buf.subarray(0, this.at);
  }
}
