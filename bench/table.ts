/** Prints benchmark rows as an aligned text table. */
export function printTable(title: string, header: string[], rows: (string | number)[][]): void {
  const cells = [header, ...rows.map((r) => r.map((c) => (typeof c === 'number' ? formatNumber(c) : c)))]
  const widths = header.map((_, i) => Math.max(...cells.map((r) => String(r[i] ?? '').length)))
  const line = (r: (string | number)[]) =>
    r
      .map((c, i) =>
        String(c)
          .padStart(i === 0 ? 0 : widths[i]!)
          .padEnd(i === 0 ? widths[i]! : 0)
      )
      .join('  ')
  console.log(`\n${title}`)
  console.log(line(cells[0]!))
  console.log(widths.map((w) => '-'.repeat(w)).join('  '))
  for (const r of cells.slice(1)) console.log(line(r))
}

function formatNumber(n: number): string {
  if (!Number.isFinite(n)) return '-'
  if (Number.isInteger(n)) return String(n)
  if (Math.abs(n) >= 100) return n.toFixed(0)
  if (Math.abs(n) >= 10) return n.toFixed(1)
  return n.toFixed(2)
}
