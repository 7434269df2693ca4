/**
 * Options of the sandbox, their defaults, and the checks that refuse a sandbox that could not
 * behave like the platform (a schedule longer than Guanaitong's 24 h, more than 10 attempts, ...).
 */
import { ConfigError } from '../../errors'
import { SIGN_ALGORITHMS } from '../../signature'
import type { SignAlgorithm } from '../../types'

/**
 * Delays before each notification attempt, in ms: attempt 1 at once, attempt 2 15 s later, then
 * 30 s, 3 min, 10 min, 20 min, 30 min, 1 h, 3 h, 6 h: 10 attempts over about 11 h.
 * THIS IS THE SANDBOX'S CHOICE. Guanaitong only says it retries "at increasing intervals within
 * 24 hours, at most 10 times" and does not publish the intervals. Multiplied by `timeScale`.
 */
export const DEFAULT_RETRY_SCHEDULE: readonly number[] = Object.freeze([
  0, 15_000, 30_000, 180_000, 600_000, 1_200_000, 1_800_000, 3_600_000, 10_800_000, 21_600_000,
])

/** Guanaitong's documented maximum of notification attempts. */
export const MAX_NOTIFY_ATTEMPTS = 10
const DAY_MS = 24 * 3600 * 1000

/** Options of `createSandbox()`. */
export interface SandboxOptions {
  /** The one application the sandbox knows. Default '20110698' (the seed's example). */
  appId?: string
  /** Its secret. Default 'sandbox-secret'. */
  appSecret?: string
  /** Algorithm the sandbox signs notifications with. Default sha1. Requests are verified whatever their signature length (40/64/128). */
  signType?: SignAlgorithm
  /** Port to listen on. Default 0: an ephemeral port, see `url`. */
  port?: number
  /** Interface to listen on. Default '127.0.0.1'. */
  host?: string
  /** Lifetime of an access token, seconds. Default 3600 (Guanaitong's `expires_in`). */
  tokenTtlSec?: number
  /** Allowed difference between a request's `timestamp` and `now`, seconds, both ways. Default 300. */
  toleranceSec?: number
  /** Multiplies the retry schedule: 0.001 turns 6 h into 21.6 s. Default 1. */
  timeScale?: number
  /** Delays before each notification attempt, ms (1 to 10 entries, sum ≤ 24 h). Default `DEFAULT_RETRY_SCHEDULE`. */
  retrySchedule?: readonly number[]
  /** How long the sandbox waits for the shop's answer to a notification, ms (real time). Default 5000. */
  notifyTimeoutMs?: number
  /** Clock in ms, for timestamps and token expiry. Default `Date.now`. */
  now?: () => number
}

/** Every option set and checked. */
export type SandboxConfig = Required<SandboxOptions>

function positive(name: string, value: number, allowZero = false): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || (!allowZero && value === 0)) {
    throw new ConfigError(`sandbox option ${name} must be a ${allowZero ? 'non-negative' : 'positive'} finite number; got ${String(value)}`)
  }
  return value
}

/** Fills in the defaults; throws a ConfigError naming the first option that is wrong. */
export function resolveOptions(options: SandboxOptions): SandboxConfig {
  const appId = options.appId ?? '20110698'
  const appSecret = options.appSecret ?? 'sandbox-secret'
  if (typeof appId !== 'string' || appId === '') throw new ConfigError('sandbox option appId must be a non-empty string')
  if (typeof appSecret !== 'string' || appSecret === '') throw new ConfigError('sandbox option appSecret must be a non-empty string')
  const signType = options.signType ?? 'sha1'
  if (!SIGN_ALGORITHMS.includes(signType)) throw new ConfigError(`sandbox option signType must be sha1, sha256 or sha512; got ${String(signType)}`)
  const port = options.port ?? 0
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new ConfigError(`sandbox option port must be an integer 0-65535; got ${String(options.port)}`)
  }
  const host = options.host ?? '127.0.0.1'
  const tokenTtlSec = positive('tokenTtlSec', options.tokenTtlSec ?? 3600)
  const toleranceSec = positive('toleranceSec', options.toleranceSec ?? 300, true)
  const timeScale = positive('timeScale', options.timeScale ?? 1, true)
  const notifyTimeoutMs = positive('notifyTimeoutMs', options.notifyTimeoutMs ?? 5000)
  const schedule = options.retrySchedule ?? DEFAULT_RETRY_SCHEDULE
  if (!Array.isArray(schedule) || schedule.length < 1 || schedule.length > MAX_NOTIFY_ATTEMPTS) {
    throw new ConfigError(`sandbox option retrySchedule must list 1 to ${MAX_NOTIFY_ATTEMPTS} delays (Guanaitong tries at most ${MAX_NOTIFY_ATTEMPTS} times)`)
  }
  schedule.forEach((delay, i) => positive(`retrySchedule[${i}]`, delay, true))
  if (schedule.reduce((a, b) => a + b, 0) > DAY_MS) {
    throw new ConfigError('sandbox option retrySchedule must fit within 24 h (Guanaitong retries within 24 hours)')
  }
  const now = options.now ?? Date.now
  if (typeof now !== 'function') throw new ConfigError('sandbox option now must be a function returning epoch ms')
  return {
    appId,
    appSecret,
    signType,
    port,
    host,
    tokenTtlSec,
    toleranceSec,
    timeScale,
    retrySchedule: Object.freeze([...schedule]),
    notifyTimeoutMs,
    now,
  }
}
