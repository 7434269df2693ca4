/**
 * Options of the sandbox, their defaults, and the checks that refuse a sandbox that could not
 * behave like the platform (a schedule longer than Guanaitong's 24 h, more than 10 attempts, ...).
 */
import { DEFAULTS } from '../../kernel/defaults'
import { ConfigError } from '../../kernel/errors'
import type { SignAlgorithm } from '../../kernel/types'
import { checkOptions, durationMs, MAX_DURATION_MS, SANDBOX_RULES } from '../../kernel/validate'

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
export const MAX_NOTIFY_ATTEMPTS: number = DEFAULTS.retryBudget

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

/** Fills in the defaults; throws a ConfigError naming the first option that is wrong (src/kernel/validate.ts). */
export function resolveOptions(options: SandboxOptions): SandboxConfig {
  checkOptions('createSandbox()', options, SANDBOX_RULES, "{ appId: '20110698', appSecret: 'sandbox-secret' }")
  const timeScale = options.timeScale ?? 1
  const schedule = options.retrySchedule ?? DEFAULT_RETRY_SCHEDULE
  // Each delay becomes a timer once scaled: the same cap as every other duration.
  schedule.forEach((delay, i) => {
    const scaled = delay * timeScale
    if (scaled > 0 && durationMs(scaled, `retrySchedule[${i}] × timeScale`)) {
      throw new ConfigError(`createSandbox(): retrySchedule[${i}] × timeScale is ${scaled} ms, over the ${MAX_DURATION_MS} ms a timer can wait`)
    }
  })
  return {
    appId: options.appId ?? '20110698',
    appSecret: options.appSecret ?? 'sandbox-secret',
    signType: options.signType ?? 'sha1',
    port: options.port ?? 0,
    host: options.host ?? '127.0.0.1',
    tokenTtlSec: options.tokenTtlSec ?? 3600,
    toleranceSec: options.toleranceSec ?? 300,
    timeScale,
    retrySchedule: Object.freeze([...schedule]),
    notifyTimeoutMs: options.notifyTimeoutMs ?? 5000,
    now: options.now ?? Date.now,
  }
}
