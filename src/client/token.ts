import { errorMessage, GatError } from '../kernel/errors'
import { TOKEN_PATH } from '../kernel/fields'
import type { Log } from '../observe/log'
import { traceTokenRefresh } from '../observe/telemetry'
import type { CachedToken, TokenCache } from '../kernel/types'
import { apiError, callSigned, type CallConfig } from './call'


/** Share of the lifetime after which a token is renewed, as the official clients do. */
const REFRESH_RATIO = 0.8

/**
 * After a failed refresh while the old token is still valid, wait this long before trying again.
 * Token creation is rate-limited per hour; without a pause every call in the grace period would
 * attempt one.
 */
export const REFRESH_RETRY_MS = 30_000

/** Holds the token in this process. `refresh` makes concurrent callers share one creation. */
export class MemoryTokenCache implements TokenCache {
  private current: CachedToken | null = null
  private inflight: Promise<CachedToken> | null = null

  async get(): Promise<CachedToken | null> {
    return this.current
  }

  async set(token: CachedToken): Promise<void> {
    this.current = { token: token.token, expiresAt: token.expiresAt, refreshAt: token.refreshAt }
  }

  async invalidate(token: string): Promise<void> {
    // A caller holding an old token must not drop the fresh one another caller just stored.
    if (this.current?.token === token) this.current = null
  }

  refresh(fetch: () => Promise<CachedToken>): Promise<CachedToken> {
    if (!this.inflight) {
      // Cleared when settled, so a failure is reported to its waiters but not to later callers.
      this.inflight = Promise.resolve()
        .then(fetch)
        .finally(() => {
          this.inflight = null
        })
    }
    return this.inflight
  }
}

function seconds(value: unknown): number | null {
  const n = typeof value === 'string' && /^[0-9]+$/.test(value) ? Number(value) : value
  return typeof n === 'number' && Number.isFinite(n) && n > 0 ? n : null
}

/** POST /token/create. */
export async function createToken(cfg: CallConfig): Promise<CachedToken> {
  // The clock is read before sending: the lifetime counts from Guanaitong issuing the token,
  // so starting it earlier errs on the side of refreshing too soon, never too late.
  const obtainedAt = cfg.now()
  const res = await callSigned(cfg, TOKEN_PATH, { grant_type: 'client_credential' })
  if (res.code !== 0) throw apiError(TOKEN_PATH, res)
  const data = (res.data ?? {}) as { access_token?: unknown; expires_in?: unknown }
  const expiresIn = seconds(data.expires_in)
  if (typeof data.access_token !== 'string' || data.access_token === '' || expiresIn === null) {
    throw new GatError({
      kind: 'invalid-response', code: null, status: res.status, traceId: res.traceId, path: TOKEN_PATH,
      msg: 'token answer lacks access_token or a positive expires_in',
    })
  }
  return {
    token: data.access_token,
    expiresAt: obtainedAt + expiresIn * 1000,
    refreshAt: obtainedAt + Math.floor(expiresIn * 1000 * REFRESH_RATIO),
  }
}

export interface TokenManagerOptions {
  cache: TokenCache
  /** Creates a token upstream (createToken in production, a stub in tests). */
  create: () => Promise<CachedToken>
  now: () => number
  logger: Log
}

function usable(token: CachedToken | null): token is CachedToken {
  return token !== null && typeof token === 'object' && typeof token.token === 'string' && token.token !== ''
}

/** Decides when to reuse, refresh or create the access token. */
export class TokenManager {
  private readonly cache: TokenCache
  private readonly create: () => Promise<CachedToken>
  private readonly now: () => number
  private readonly logger: Log
  private inflight: Promise<CachedToken> | null = null
  private nextRefreshAttempt = 0
  private lastKnown: CachedToken | null = null

  constructor(options: TokenManagerOptions) {
    this.cache = options.cache
    this.create = options.create
    this.now = options.now
    this.logger = options.logger
  }

  async get(): Promise<string> {
    // The last token this process saw, used without a round trip to a shared cache until it is
    // due for refresh, and as a fallback while that cache (Redis) is unreachable.
    const local = this.lastKnown
    if (local && this.now() < local.refreshAt) return local.token
    let cached: CachedToken | null
    try {
      cached = await this.cache.get()
    } catch (err) {
      if (!local || this.now() >= local.expiresAt) throw err
      this.logger.warn({
        error: errorMessage(err),
      }, '[express-guanaitong] token cache unreachable; using this process\'s token until it expires')
      return local.token
    }
    if (usable(cached)) this.lastKnown = cached
    const now = this.now()
    if (usable(cached) && now < cached.refreshAt) return cached.token
    if (usable(cached) && now < cached.expiresAt) {
      if (now < this.nextRefreshAttempt) return cached.token
      try {
        return (await this.refresh()).token
      } catch (err) {
        // Concurrent callers share one failed refresh: log it once, not once per caller.
        if (this.now() < this.nextRefreshAttempt) return cached.token
        this.nextRefreshAttempt = this.now() + REFRESH_RETRY_MS
        this.logger.warn({
          error: errorMessage(err),
          expiresAt: new Date(cached.expiresAt).toISOString(),
        }, '[express-guanaitong] access token refresh failed; using the current token until it expires')
        return cached.token
      }
    }
    return (await this.refresh()).token
  }

  /** Drops `token` if it is still the current one (a concurrent caller may already have replaced it). */
  invalidate(token: string): Promise<void> {
    if (this.lastKnown?.token === token) this.lastKnown = null
    return this.cache.invalidate(token)
  }

  private async refresh(): Promise<CachedToken> {
    const token = await this.shared()
    this.lastKnown = token
    return token
  }

  private shared(): Promise<CachedToken> {
    if (this.cache.refresh) return this.cache.refresh(() => this.createAndStore())
    if (!this.inflight) {
      this.inflight = this.createAndStore().finally(() => {
        this.inflight = null
      })
    }
    return this.inflight
  }

  /**
   * Looks at the cache once more before creating: a caller that waited for a lock (another
   * process, or a refresh that finished just before this one began) usually finds a fresh
   * token there, and creating a second one would waste the hourly quota and may revoke the first.
   */
  private async createAndStore(): Promise<CachedToken> {
    const current = await this.cache.get()
    if (usable(current) && this.now() < current.refreshAt) return current
    const token = await traceTokenRefresh(async () => {
      const created = await this.create()
      await this.cache.set(created)
      return created
    })
    this.logger.debug?.({
      refreshAt: new Date(token.refreshAt).toISOString(),
      expiresAt: new Date(token.expiresAt).toISOString(),
    }, '[express-guanaitong] access token created')
    return token
  }
}
