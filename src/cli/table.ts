/**
 * Rows of text cells into aligned columns, `docker ps` style: two spaces
 * between columns, no padding after the last one. Pure: returns the text, the
 * caller prints it.
 */
export interface Column<Row> {
  header: string;
  value: (row: Row) => string;
}

const GAP = "  ";

/**
 * Control characters (escape sequences from a label, a newline in a path)
 * would break the layout or drive the terminal: shown as `?` instead.
 */
export function cleanCell(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, "?");
}

/** Width in terminal columns, counting code points (not UTF-16 units). */
function width(text: string): number {
  return [...text].length;
}

export function renderTable<Row>(columns: readonly Column<Row>[], rows: readonly Row[]): string {
  const cells = [columns.map((c) => c.header), ...rows.map((row) => columns.map((c) => cleanCell(c.value(row))))];
  const widths = columns.map((_, i) => Math.max(...cells.map((line) => width(line[i] ?? ""))));
  return cells
    .map((line) =>
      line
        .map((cell, i) => (i === line.length - 1 ? cell : cell + " ".repeat((widths[i] ?? 0) - width(cell))))
        .join(GAP)
        .trimEnd(),
    )
    .map((line) => `${line}\n`)
    .join("");
}
