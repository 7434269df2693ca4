import { DEFAULTS } from '../defaults'
import { ConfigError } from '../errors'
import { checkSecrets } from '../secrets'
import { SIGN_ALGORITHMS } from '../signature'
import { QUIET_CONSOLE, toLogger, type Log } from '../observe/log'
import type { ClientOptions, SignAlgorithm, TokenCache } from '../types'
import { MemoryTokenCache } from './token'

export const DEFAULT_BASE_URL: string = DEFAULTS.baseUrl
export const DEFAULT_TIMEOUT_MS: number = DEFAULTS.timeoutMs
/** setTimeout fires at once for larger delays, which would turn every call into a timeout. */
const MAX_TIMEOUT_MS = 2 ** 31 - 1

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

function checkBaseUrl(value: unknown): string {
  if (value === undefined) return DEFAULT_BASE_URL
  let url: URL | null = null
  try {
    if (typeof value === 'string') url = new URL(value)
  } catch {
    url = null
  }
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    throw new ConfigError(`baseUrl ${JSON.stringify(value)} is not an http(s) URL: use e.g. https://openapi.guanaitong.com (production) or https://openapi.guanaitong.tech (test)`)
  }
  if (url.search || url.hash) throw new ConfigError('baseUrl must not contain a query string or fragment: give the host only, e.g. https://openapi.guanaitong.com')
  // Paths are appended as "/token/create"; a trailing slash would make "//token/create".
  return (value as string).replace(/\/+$/, '')
}

function checkTokenCache(cache: unknown): TokenCache {
  if (cache === undefined) return new MemoryTokenCache()
  const c = cache as Partial<TokenCache> | null
  if (!c || typeof c.get !== 'function' || typeof c.set !== 'function' || typeof c.invalidate !== 'function'
    || (c.refresh !== undefined && typeof c.refresh !== 'function')) {
    throw new ConfigError('tokenCache must implement get(), set() and invalidate() (and optionally refresh()): use MemoryTokenCache or RedisTokenCache')
  }
  return c as TokenCache
}

/** Validates createClient's options once, at construction, so a misconfiguration fails at startup, not at the first payment. */
export function resolveClientOptions(options: ClientOptions): ResolvedClientOptions {
  if (!options || typeof options !== 'object') throw new ConfigError('createClient needs an options object: { appId, appSecret }')
  const { appId, appSecret } = options
  if (typeof appId !== 'string' || appId.trim() === '') {
    throw new ConfigError('appId is missing: pass the appid of your Guanaitong application')
  }
  if (appId !== appId.trim()) throw new ConfigError('appId has leading or trailing whitespace (probably copied with a newline): trim it')

  const signingSecret = checkSecrets(appSecret)[0]

  const signType = options.signType ?? DEFAULTS.signType
  if (!SIGN_ALGORITHMS.includes(signType)) {
    throw new ConfigError(`signType ${JSON.stringify(signType)} is not supported: use "sha1" (Guanaitong's default), "sha256" or "sha512" as configured for your application`)
  }

  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS
  if (typeof timeoutMs !== 'number' || !Number.isFinite(timeoutMs) || timeoutMs <= 0 || timeoutMs > MAX_TIMEOUT_MS) {
    throw new ConfigError(`timeoutMs must be a positive number of milliseconds (e.g. ${DEFAULT_TIMEOUT_MS}), got ${String(timeoutMs)}`)
  }

  if (options.now !== undefined && typeof options.now !== 'function') throw new ConfigError('now must be a function returning epoch milliseconds')
  const logger = options.logger
  if (logger !== undefined && (typeof logger?.warn !== 'function' || typeof logger?.error !== 'function')) {
    throw new ConfigError('logger must have warn() and error() methods: console, pino and bunyan loggers fit')
  }

  return {
    appId,
    signingSecret,
    signType,
    baseUrl: checkBaseUrl(options.baseUrl),
    timeoutMs,
    tokenCache: checkTokenCache(options.tokenCache),
    now: options.now ?? Date.now,
    // Only problems reach the console by default; token chatter stays quiet unless a logger is given.
    logger: toLogger(logger, QUIET_CONSOLE),
  }
}
