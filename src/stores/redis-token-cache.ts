import { randomUUID } from 'node:crypto'
import { GuanaitongError, ParamError } from '../kernel/errors'
import type { CachedToken, TokenCache } from '../kernel/types'
import { checkOptions, MAX_DURATION_MS, REDIS_TOKEN_CACHE_RULES } from '../kernel/validate'
import { LuaScript, redisAdapter, type RedisAdapter, type RedisClientLike } from './redis-adapter'


const GET = new LuaScript(`return redis.call('GET', KEYS[1])`)

/** ARGV: value, ttlMs. */
const SET = new LuaScript(`redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1`)

/** ARGV: token. Deletes the cached token only if it is still that one. */
const INVALIDATE = new LuaScript(`
local value = redis.call('GET', KEYS[1])
if not value then return 0 end
local ok, decoded = pcall(cjson.decode, value)
if ok and type(decoded) == 'table' and decoded.token == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
`)

/** ARGV: owner, lockMs. */
const LOCK = new LuaScript(`
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return 0
`)

/** ARGV: owner. */
const UNLOCK = new LuaScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)

/**
 * Access token cache in Redis, shared by every instance of the shop: one token for the fleet,
 * and one instance at a time creates a new one.
 *
 * `refresh(fetch)`: callers in this process share one refresh. Across processes, the first to
 * take a lock (`SET NX PX lockMs`) re-reads the cache (a fresh token there is returned without
 * fetching), else runs `fetch`, stores the token, and frees the lock. The others poll every
 * `pollMs` until a new token appears; if the lock goes away without one (the fetch failed, or
 * its instance died), the next poller takes the lock and fetches itself. After `waitMs` without
 * a token a waiting caller fails.
 *
 * A token that is still fresh (its `refreshAt` ahead) is returned as is: when Guanaitong rejected
 * a token, `invalidate(token)` it before calling `refresh`.
 */
export class RedisTokenCache implements TokenCache {
  readonly prefix: string
  readonly lockMs: number
  readonly waitMs: number
  readonly pollMs: number
  private readonly redis: RedisAdapter
  private readonly now: () => number
  private readonly valueKey: string
  private readonly lockKey: string
  private inflight: Promise<CachedToken> | undefined

  constructor(options: RedisTokenCacheOptions) {
    checkOptions('RedisTokenCache', options, REDIS_TOKEN_CACHE_RULES, '{ client: new Redis(url) }')
    this.redis = redisAdapter(options.client, 'RedisTokenCache')
    this.prefix = options.prefix ?? 'gat:token:'
    this.lockMs = options.lockMs ?? 10_000
    this.waitMs = options.waitMs ?? Math.min(this.lockMs + 5_000, MAX_DURATION_MS)
    this.pollMs = options.pollMs ?? 50
    this.now = options.now ?? Date.now
    this.valueKey = `${this.prefix}current`
    this.lockKey = `${this.prefix}lock`
  }

  /** The cached token, or null when there is none, it expired, or it cannot be read. */
  async get(): Promise<CachedToken | null> {
    const raw = await this.redis.evalScript(GET, [this.valueKey], [])
    if (typeof raw !== 'string') return null
    let parsed: unknown
    try {
      parsed = JSON.parse(raw)
    } catch {
      return null
    }
    if (!isCachedToken(parsed) || parsed.expiresAt <= this.now()) return null
    return { token: parsed.token, expiresAt: parsed.expiresAt, refreshAt: parsed.refreshAt }
  }

  /** Stores the token until its `expiresAt`. A token already expired is not stored. */
  async set(token: CachedToken): Promise<void> {
    if (!isCachedToken(token)) {
      throw new ParamError('RedisTokenCache.set(token)', 'must be { token: string, expiresAt: number, refreshAt: number }')
    }
    const ttl = Math.floor(token.expiresAt - this.now())
    if (ttl <= 0) return
    const value = JSON.stringify({ token: token.token, expiresAt: token.expiresAt, refreshAt: token.refreshAt })
    await this.redis.evalScript(SET, [this.valueKey], [value, ttl])
  }

  /** Drops the cached token, only if it is still `token`: another instance may have replaced it already. */
  async invalidate(token: string): Promise<void> {
    await this.redis.evalScript(INVALIDATE, [this.valueKey], [String(token)])
  }

  /** Runs `fetch` once across the fleet and resolves with the new (or already fresh) token. */
  refresh(fetch: () => Promise<CachedToken>): Promise<CachedToken> {
    if (this.inflight) return this.inflight
    const running = this.refreshOnce(fetch).finally(() => {
      if (this.inflight === running) this.inflight = undefined
    })
    this.inflight = running
    return running
  }

  private async refreshOnce(fetch: () => Promise<CachedToken>): Promise<CachedToken> {
    const before = await this.get()
    const owner = randomUUID()
    const deadline = this.now() + this.waitMs
    for (;;) {
      if (await this.lock(owner)) {
        try {
          const current = await this.get()
          if (current && current.refreshAt > this.now()) return current
          const token = await fetch()
          if (!isCachedToken(token)) {
            throw new ParamError('RedisTokenCache.refresh(fetch)', 'fetch must resolve with { token: string, expiresAt: number, refreshAt: number }')
          }
          await this.set(token)
          return token
        } finally {
          // A failed unlock is harmless: the lock expires after lockMs.
          await this.unlock(owner).catch(() => undefined)
        }
      }
      const current = await this.get()
      if (current && (current.token !== before?.token || current.refreshAt > this.now())) return current
      if (this.now() >= deadline) {
        throw new GuanaitongError(`no access token after waiting ${this.waitMs} ms for another instance to refresh it (lock ${this.lockKey})`,
          'TOKEN_REFRESH_TIMEOUT')
      }
      await new Promise((resolve) => setTimeout(resolve, this.pollMs))
    }
  }

  private async lock(owner: string): Promise<boolean> {
    return Number(await this.redis.evalScript(LOCK, [this.lockKey], [owner, this.lockMs])) === 1
  }

  private async unlock(owner: string): Promise<void> {
    await this.redis.evalScript(UNLOCK, [this.lockKey], [owner])
  }
}

function isCachedToken(value: unknown): value is CachedToken {
  if (value === null || typeof value !== 'object') return false
  const t = value as Record<string, unknown>
  return typeof t.token === 'string' && t.token !== '' &&
    typeof t.expiresAt === 'number' && Number.isFinite(t.expiresAt) &&
    typeof t.refreshAt === 'number' && Number.isFinite(t.refreshAt)
}

/** Options of `new RedisTokenCache()`. */
export interface RedisTokenCacheOptions {
  /** A ready ioredis client or a connected node-redis client, as for `RedisStore`. */
  client: RedisClientLike
  /**
   * Prefix of the two keys used (`<prefix>current`, `<prefix>lock`). Default "gat:token:".
   * Use one per application when several share a Redis, e.g. `gat:token:${appId}:`.
   */
  prefix?: string
  /**
   * How long a refresh may hold the fleet-wide lock, ms. Default 10 000. Keep it at least the
   * client's `timeoutMs`: a fetch that outlives the lock lets another instance fetch too.
   */
  lockMs?: number
  /** How long an instance waits for another instance's refresh before failing, ms. Default lockMs + 5 000. */
  waitMs?: number
  /** How often a waiting instance looks for the new token, ms. Default 50. */
  pollMs?: number
  /** Clock in ms, for tests. Default `Date.now`. */
  now?: () => number
}
