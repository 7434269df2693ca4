/** Every default in one place, so the README table and the code cannot drift apart. */
export const DEFAULTS = {
  baseUrl: 'https://openapi.guanaitong.tech',
  signType: 'sha1',
  timeoutMs: 10_000,
  toleranceSec: 300,
  handlerTimeoutMs: 30_000,
  storeTimeoutMs: 5_000,
  bodyLimit: 64 * 1024,
  parameterLimit: 100,
  notifyPath: '/notify',
  payPath: '/pay',
  leaseMs: 60_000,
  /** Guanaitong retries for 24 h; an hour more covers clock skew and the last attempt's duration. */
  retentionMs: 25 * 60 * 60 * 1000,
  maxEntries: 100_000,
  /** RedisStore's WAIT for replicas: a healthy replica acknowledges in about a round trip. */
  waitTimeoutMs: 100,
  /** Guanaitong's documented maximum number of notification attempts. */
  retryBudget: 10,
  retryBudgetThreshold: 7,
} as const

const UNITS: Record<string, number> = { b: 1, kb: 1024, mb: 1024 * 1024 }
const SIZE = /^(\d+)\s*(b|kb|mb)?$/i

/** `65536`, `"64kb"`, `"1mb"` → bytes; NaN for anything else. */
export function parseBytes(value: number | string): number {
  if (typeof value === 'number') return Number.isInteger(value) && value > 0 ? value : NaN
  const m = SIZE.exec(value.trim())
  return m ? Number(m[1]) * UNITS[(m[2] ?? 'b').toLowerCase()] : NaN
}
