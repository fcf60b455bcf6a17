// Applying a mutant's unified diff (bpf/mutants/<name>.patch) to the production BPF sources in
// memory. Line numbers are ignored: each hunk's old lines must occur exactly once in its file,
// so a patch that no longer fits the production source fails with a message, never silently.

export class PatchError extends Error {}

interface Hunk {
  readonly file: string;
  readonly old: readonly string[];
  readonly next: readonly string[];
}

function parse(patch: string): Hunk[] {
  const hunks: Hunk[] = [];
  let file: string | null = null;
  const lines = patch.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.startsWith('+++ ')) {
      file = line.slice(4).replace(/^b\//, '').trim();
      continue;
    }
    const head = /^@@ -\d+(?:,(\d+))? \+\d+(?:,(\d+))? @@/.exec(line);
    if (!head) continue;
    if (file === null) throw new PatchError('a hunk comes before any +++ line');
    // The header's line counts say where the hunk ends (a blank context line may have lost its space).
    let oldLeft = Number(head[1] ?? '1');
    let newLeft = Number(head[2] ?? '1');
    const old: string[] = [];
    const next: string[] = [];
    while ((oldLeft > 0 || newLeft > 0) && i + 1 < lines.length) {
      const l = lines[++i]!;
      const kind = l === '' ? ' ' : l[0];
      const body = l.slice(1);
      if (kind === ' ') {
        old.push(body);
        next.push(body);
        oldLeft--;
        newLeft--;
      } else if (kind === '-') {
        old.push(body);
        oldLeft--;
      } else if (kind === '+') {
        next.push(body);
        newLeft--;
      } else if (l.startsWith('\\')) {
        // "\ No newline at end of file"
      } else {
        throw new PatchError(`a hunk of ${file} ends early`);
      }
    }
    hunks.push({ file, old, next });
  }
  return hunks;
}

function find(lines: readonly string[], block: readonly string[]): number[] {
  const at: number[] = [];
  for (let i = 0; i + block.length <= lines.length; i++) {
    let ok = true;
    for (let j = 0; j < block.length && ok; j++) ok = lines[i + j] === block[j];
    if (ok) at.push(i);
  }
  return at;
}

/** The files after the patch (only the files it names change). */
export function applyPatch(files: ReadonlyMap<string, string>, patch: string): Map<string, string> {
  const out = new Map(files);
  const hunks = parse(patch);
  if (hunks.length === 0) throw new PatchError('the patch has no hunk');
  for (const h of hunks) {
    const text = out.get(h.file);
    if (text === undefined) throw new PatchError(`it changes ${h.file}, which is not a production source`);
    const lines = text.split('\n');
    const at = find(lines, h.old);
    if (at.length !== 1) throw new PatchError(`${h.file} ${at.length === 0 ? 'no longer contains' : 'contains more than once'} the lines a hunk changes`);
    lines.splice(at[0]!, h.old.length, ...h.next);
    out.set(h.file, lines.join('\n'));
  }
  return out;
}
