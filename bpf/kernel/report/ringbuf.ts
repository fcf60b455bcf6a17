// Reading a BPF ring buffer from user space through libbpf's ring_buffer API (koffi): a consumer
// over one map fd whose drain() returns the records submitted since the last drain, in order.

import koffi from 'koffi';
import { KmeshCheckError } from '../../../shared/errors.js';
import { errnoName } from '../libc.js';

const lib = koffi.load('libbpf.so.1');
const SampleFn = koffi.proto('int kmesh_ringbuf_sample(void *ctx, void *data, size_t size)');
const rb = {
  create: lib.func('void *ring_buffer__new(int map_fd, kmesh_ringbuf_sample *cb, void *ctx, void *opts)') as (fd: number, cb: unknown, ctx: null, opts: null) => bigint | null,
  consume: lib.func('int ring_buffer__consume(void *rb)') as (r: bigint) => number,
  free: lib.func('void ring_buffer__free(void *rb)') as (r: bigint) => void,
};

export class RingReader {
  private readonly handle: bigint;
  private readonly callback: bigint;
  private batch: Uint8Array[] = [];

  constructor(fd: number, what: string) {
    this.callback = <bigint>koffi.register((_ctx: unknown, data: unknown, size: number | bigint): number => {
      const n = Number(size);
      this.batch.push(Uint8Array.from(koffi.decode(data, koffi.array('uint8_t', n)) as number[]));
      return 0;
    }, koffi.pointer(SampleFn));
    const h = rb.create(fd, this.callback, null, null);
    if (!h) {
      koffi.unregister(this.callback);
      throw new KmeshCheckError('environment', `cannot read ring buffer ${what} (ring_buffer__new failed)`);
    }
    this.handle = h;
  }

  drain(): Uint8Array[] {
    const rc = rb.consume(this.handle);
    if (rc < 0) throw new KmeshCheckError('environment', `reading a ring buffer failed (${errnoName(rc)})`);
    const out = this.batch;
    this.batch = [];
    return out;
  }

  close(): void {
    rb.free(this.handle);
    koffi.unregister(this.callback);
  }
}
