// Small Markdown builders for the generated spec: tables, code blocks, escaping. Output is plain
// text with "\n" line ends and no trailing spaces, so it diffs cleanly.

/** Escapes text for a Markdown table cell (pipes would split the cell, newlines end the row). */
export function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
}

export function mdTable(header: readonly string[], rows: readonly (readonly string[])[]): string[] {
  const line = (cells: readonly string[]) => `| ${cells.map(cell).join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)];
}

export function codeBlock(lang: string, lines: readonly string[]): string[] {
  return ['```' + lang, ...lines.map((l) => l.trimEnd()), '```'];
}

/** Inline code, safe for text that itself holds backticks. */
export function code(text: string): string {
  return text.includes('`') ? `\`\` ${text} \`\`` : `\`${text}\``;
}

/** A GitHub-style heading anchor: lower case, punctuation dropped, spaces to hyphens. */
export function anchor(heading: string): string {
  return heading
    .toLowerCase()
    .replace(/[^a-z0-9 _-]/g, '')
    .replace(/ /g, '-');
}
