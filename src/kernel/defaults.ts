
/** Every default in one place, so the README table and the code cannot drift apart. */
export const DEFAULTS = {
  baseUrl: 'https://openapi.guanaitong.tech',
  signType: 'sha1',
  timeoutMs: 10_000,
  toleranceSec: 300,
  handlerTimeoutMs: 30_000,
  storeTimeoutMs: 5_000,
  bodyLimit: 64 * 1024,
  /** Most bytes of a pay request's body: an order is a few hundred. */
  payBodyLimit: 16 * 1024,
  /** Most fields of a pay request's form body (payFormBodies). */
  payParameterLimit: 1000,
  parameterLimit: 100,
  notifyPath: '/notify',
  payPath: '/pay',
  leaseMs: 60_000,
  /**
   * Most bytes the API client reads of any answer. Guanaitong's answers are a few hundred bytes
   * (a token, a trade number); a megabyte leaves room for any list an other endpoint returns,
   * and stops a broken or hostile server from filling the process's memory.
   */
  maxResponseBytes: 1024 * 1024,
  /**
   * Longest the notify route waits for a notification's whole body (a few hundred bytes): a client
   * that sends it slowly holds a socket no longer than this, not Node's 300 s `requestTimeout`.
   */
  bodyTimeoutMs: 10_000,
  /**
   * How long a lease keeps being renewed for a handler that runs past `handlerTimeoutMs`: long
   * enough for any real onPaid to finish, short enough that a hung one frees its payment.
   */
  leaseRenewalCapMs: 10 * 60 * 1000,
  /** Guanaitong retries for 24 h; an hour more covers clock skew and the last attempt's duration. */
  retentionMs: 25 * 60 * 60 * 1000,
  maxEntries: 100_000,
  /** How often a SQL store deletes done-markers older than its retention. */
  purgeEveryMs: 10 * 60 * 1000,
  /** RedisStore's WAIT for replicas: a healthy replica acknowledges in about a round trip. */
  waitTimeoutMs: 100,
  /** Guanaitong's documented maximum number of notification attempts. */
  retryBudget: 10,
  retryBudgetThreshold: 7,
  /**
   * How long a pay may stay unsettled before `onUnsettled`: Guanaitong's notification retries run
   * for 24 h, so a pay still open an hour past that will not be settled by them.
   */
  unsettledAfterMs: 25 * 60 * 60 * 1000,
  /** How often the router looks for unsettled pays that came due. */
  sweepEveryMs: 60_000,
  /** A due record a sweep could not report (the hook failed, or the order is being settled right now) is taken again this much later. */
  unsettledRetryMs: 5 * 60 * 1000,
  /** Longest `onUnsettled` may take before the sweep counts it as failed and retries later. */
  unsettledHookTimeoutMs: 30_000,
  /** Most due records one sweep takes. */
  sweepLimit: 100,
  /** Most records `listUnsettled` returns unless told otherwise. */
  unsettledListLimit: 1000,
} as const


const UNITS: Record<string, number> = { b: 1, kb: 1024, mb: 1024 * 1024 }
const SIZE = /^(\d+)\s*(b|kb|mb)?$/i

/** `65536`, `"64kb"`, `"1mb"` → bytes; NaN for anything else. */
export function parseBytes(value: number | string): number {
  if (typeof value === 'number') return Number.isInteger(value) && value > 0 ? value : NaN
  const m = SIZE.exec(value.trim())
  return m ? Number(m[1]) * UNITS[(m[2] ?? 'b').toLowerCase()] : NaN
}
