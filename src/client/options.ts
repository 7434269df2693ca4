import { DEFAULTS } from '../kernel/defaults'
import { toLogger, type Log } from '../observe/log'
import type { AppSecret, Logger, SignAlgorithm, TokenCache } from '../kernel/types'
import { checkOptions, checkSecrets, CLIENT_RULES } from '../kernel/validate'
import { MemoryTokenCache } from './token'

export interface ResolvedClientOptions {
  appId: string
  signingSecret: string
  signType: SignAlgorithm
  baseUrl: string
  timeoutMs: number
  tokenCache: TokenCache
  now: () => number
  logger: Log
}

/** Validates createClient's options once, at construction (src/kernel/validate.ts), so a misconfiguration fails at startup, not at the first payment. */
export function resolveClientOptions(options: ClientOptions): ResolvedClientOptions {
  checkOptions('createClient()', options, CLIENT_RULES, '{ appId, appSecret }')
  return {
    appId: options.appId,
    signingSecret: checkSecrets(options.appSecret)[0],
    signType: options.signType ?? DEFAULTS.signType,
    // Paths are appended as "/token/create"; a trailing slash would make "//token/create".
    baseUrl: (options.baseUrl ?? DEFAULTS.baseUrl).replace(/\/+$/, ''),
    timeoutMs: options.timeoutMs ?? DEFAULTS.timeoutMs,
    tokenCache: options.tokenCache ?? new MemoryTokenCache(),
    now: options.now ?? Date.now,
    logger: toLogger(options.logger),
  }
}

/** Options of `createClient()`. */
export interface ClientOptions {
  /** Guanaitong application id (`appid`). */
  appId: string
  /** Application secret; the first of a list signs. */
  appSecret: AppSecret
  /** API host. Default the test host `https://openapi.guanaitong.tech`; production is `https://openapi.guanaitong.com`. */
  baseUrl?: string
  /** Signature algorithm configured for the application. Default sha1. */
  signType?: SignAlgorithm
  /** Per-request timeout in ms. Default 10 000. */
  timeoutMs?: number
  /** Where the access token lives. Default: in this process's memory. */
  tokenCache?: TokenCache
  /** Clock in ms, for tests. Default `Date.now`. */
  now?: () => number
  /** Where client events (token refreshes, retries) are logged. */
  logger?: Logger
}
