// CPU time of a process or of one of its threads, from /proc (Linux, where the checker runs): the
// bench tells a job's main thread from the threads V8 runs beside it (compiler, garbage collector),
// because only the main thread's share is serial, and from the kernel's harness worker process and
// the VM's run thread.

import { readFileSync } from 'node:fs';

/** utime + stime (fields 14 and 15) of a /proc stat file, in ms (USER_HZ is 100/s). */
function statCpuMs(file: string): number {
  const fields = readFileSync(file, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** CPU time (ms) a process has used, all its threads. */
export function processCpuMs(pid: number): number {
  return statCpuMs(`/proc/${pid}/stat`);
}

/** CPU time (ms) thread `tid` of process `pid` has used. */
export function threadCpuMs(pid: number, tid: number): number {
  return statCpuMs(`/proc/${pid}/task/${tid}/stat`);
}

/** CPU time (ms) the main thread of a process has used (its thread id is the process id). */
export function mainThreadCpuMs(pid: number): number {
  return threadCpuMs(pid, pid);
}
