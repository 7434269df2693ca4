/** Real time since `started` (a `performance.now()` reading), ms rounded to two decimals for records and events. */
export function elapsedMs(started: number): number {
  return Math.round((performance.now() - started) * 100) / 100
}
