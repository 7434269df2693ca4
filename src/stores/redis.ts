import { randomUUID } from 'node:crypto'
import { DEFAULTS } from '../defaults'
import { ConfigError, GuanaitongError } from '../errors'
import type { ClaimResult, NotifyStore, RedisStoreOptions } from '../types'
import { LuaScript, redisAdapter, type RedisAdapter } from './redis-adapter'
import { describeValue, positiveInteger } from './validate'


// Keys of one notification key K, both in the hash slot of K (Redis Cluster safe):
//   <prefix>{K}        hash: a = claims so far, o = owner of the latest claim, d = done
//   <prefix>{K}:lease  string: the owner while its lease runs, PX leaseMs
// The hash outlives the lease (max(leaseMs, retentionMs)), so the attempt counter survives a
// release and a lease that ran out, and the owner is known until someone else claims.

/** ARGV: owner, leaseMs, keepMs. Returns 0 done, -1 busy, else the attempt number of the new claim. */
const CLAIM = new LuaScript(`
if redis.call('HEXISTS', KEYS[1], 'd') == 1 then return 0 end
if redis.call('EXISTS', KEYS[2]) == 1 then return -1 end
local attempt = redis.call('HINCRBY', KEYS[1], 'a', 1)
redis.call('HSET', KEYS[1], 'o', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
return attempt
`)

/** ARGV: owner, retentionMs. Marks done when owner made the latest claim. */
const COMPLETE = new LuaScript(`
if redis.call('HGET', KEYS[1], 'o') ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[2])
redis.call('HDEL', KEYS[1], 'o')
redis.call('HSET', KEYS[1], 'd', '1')
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`)

/** ARGV: owner, keepMs. Frees the key, keeping the attempt counter keepMs. */
const RELEASE = new LuaScript(`
if redis.call('HGET', KEYS[1], 'o') ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[2])
redis.call('HDEL', KEYS[1], 'o')
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`)

/** ARGV: owner, leaseMs, keepMs. Renews the lease from now. */
const EXTEND = new LuaScript(`
if redis.call('HGET', KEYS[1], 'o') ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
`)

/**
 * Notification store in Redis, for several instances behind a load balancer. Each call is one
 * Lua script, so one round trip (EVALSHA; EVAL once if Redis does not have the script yet), and
 * atomic: `claim` checks and takes the key in one step, `complete`/`release`/`extend` act only
 * when the caller made the latest claim of the key.
 *
 * Errors are not caught: a Redis failure rejects, and the router answers the notification
 * `fail` (Guanaitong retries). Configure the client to fail fast (see `client`).
 *
 * An owner whose lease ran out keeps the key until another request claims it: until then its
 * `complete`, `release` and `extend` still succeed. After a takeover they return false.
 */
export class RedisStore implements NotifyStore {
  readonly leaseMs: number
  readonly retentionMs: number
  readonly prefix: string
  /** Replicas that must acknowledge a done-marker before `complete` resolves; 0: no WAIT. */
  readonly waitReplicas: number
  /** How long `complete` waits for them, ms. */
  readonly waitTimeoutMs: number
  private readonly redis: RedisAdapter
  /** How long the attempt counter (and the hash) outlives its last write. */
  private readonly keepMs: number

  constructor(options: RedisStoreOptions) {
    if (options === null || typeof options !== 'object') {
      throw new ConfigError('new RedisStore(options): options are required, e.g. new RedisStore({ client: new Redis(url) })')
    }
    this.redis = redisAdapter(options.client, 'RedisStore')
    this.leaseMs = positiveInteger('RedisStore', 'leaseMs', options.leaseMs, DEFAULTS.leaseMs,
      'how long a claim lasts before another request may take over')
    this.retentionMs = positiveInteger('RedisStore', 'retentionMs', options.retentionMs, DEFAULTS.retentionMs,
      'how long a done-marker is kept; keep it above 24 h (Guanaitong retries for 24 h)')
    if (options.prefix !== undefined && (typeof options.prefix !== 'string' || /[{}]/.test(options.prefix))) {
      throw new ConfigError(`RedisStore: prefix must be a string without { or } such as "gat:" (the store adds a hash tag around each key itself); got ${describeValue(options.prefix)}`)
    }
    this.prefix = options.prefix ?? 'gat:'
    const { waitReplicas = 0, waitTimeoutMs } = options
    if (!Number.isSafeInteger(waitReplicas) || waitReplicas < 0) {
      throw new ConfigError(`RedisStore: waitReplicas must be a whole number, 0 or more (how many replicas must acknowledge a done-marker before complete() resolves; 0 does not wait); got ${describeValue(waitReplicas)}`)
    }
    if (waitReplicas === 0 && waitTimeoutMs !== undefined) {
      throw new ConfigError('RedisStore: waitTimeoutMs needs waitReplicas (the number of replicas to wait for), e.g. { waitReplicas: 1, waitTimeoutMs: 100 }')
    }
    this.waitReplicas = waitReplicas
    this.waitTimeoutMs = positiveInteger('RedisStore', 'waitTimeoutMs', waitTimeoutMs, DEFAULTS.waitTimeoutMs,
      'how long complete() waits for the replicas; keep it below the client\'s command timeout')
    this.keepMs = Math.max(this.leaseMs, this.retentionMs)
  }

  /**
   * The Redis keys of a notification key: its hash and its lease. The key goes inside a hash
   * tag, `<prefix>{<key>}`, so both are in one Redis Cluster slot. A key starting with `}` (which
   * would make the tag empty) or `\\` gets one `\\` in front, so the layout stays one-to-one.
   */
  keysOf(key: string): [hash: string, lease: string] {
    const tagged = key.startsWith('}') || key.startsWith('\\') ? `\\${key}` : key
    const hash = `${this.prefix}{${tagged}}`
    return [hash, `${hash}:lease`]
  }

  async claim(key: string): Promise<ClaimResult> {
    checkKey(key)
    const owner = randomUUID()
    const keys = this.keysOf(key)
    let raw: unknown
    try {
      raw = await this.redis.evalScript(CLAIM, keys, [owner, this.leaseMs, this.keepMs])
    } catch (err) {
      // The script may still run although the call failed: a claim whose reply outlived the
      // client's commandTimeout (a stalled Redis) is executed when Redis wakes up, and would hold
      // the key for leaseMs with no one to complete it, every retry answered IN_PROGRESS meanwhile.
      // Give it back: RELEASE goes out on the same connection after the claim, so Redis runs it
      // after the claim, and it acts only for this owner. Sent as EVAL, not EVALSHA: its reply
      // will time out too, so a NOSCRIPT could never be followed up. When the claim never reached
      // Redis, the release fails too, harmlessly.
      this.redis.evalSource(RELEASE, keys, [owner, this.keepMs]).catch(() => undefined)
      throw err
    }
    const reply = toInteger(raw)
    if (reply === 0) return { status: 'done' }
    if (reply < 0) return { status: 'busy' }
    return { status: 'claimed', owner, attempt: reply }
  }

  /**
   * Marks the key done when `owner` made its latest claim. With `waitReplicas`, then waits (WAIT)
   * until that many replicas have the done-marker, and rejects with STORE_NOT_REPLICATED when
   * fewer acknowledged within `waitTimeoutMs`: the marker is on the primary, but a failover
   * before it replicates would lose it.
   */
  async complete(key: string, owner: string): Promise<boolean> {
    checkKey(key)
    const keys = this.keysOf(key)
    const done = toInteger(await this.redis.evalScript(COMPLETE, keys, [String(owner), this.retentionMs])) === 1
    if (done && this.waitReplicas > 0) {
      const acknowledged = toInteger(await this.redis.waitForReplicas(keys[0], this.waitReplicas, this.waitTimeoutMs))
      if (acknowledged < this.waitReplicas) {
        throw new GuanaitongError(`RedisStore: the done-marker of ${key} reached ${acknowledged} of ${this.waitReplicas} replica(s) ` +
          `within ${this.waitTimeoutMs} ms; it is stored on the primary, but a failover before it replicates would lose it ` +
          'and a later duplicate would run the handler again', 'STORE_NOT_REPLICATED', 503)
      }
    }
    return done
  }

  async release(key: string, owner: string): Promise<boolean> {
    checkKey(key)
    return toInteger(await this.redis.evalScript(RELEASE, this.keysOf(key), [String(owner), this.keepMs])) === 1
  }

  async extend(key: string, owner: string): Promise<boolean> {
    checkKey(key)
    return toInteger(await this.redis.evalScript(EXTEND, this.keysOf(key), [String(owner), this.leaseMs, this.keepMs])) === 1
  }
}

function toInteger(reply: unknown): number {
  const n = typeof reply === 'number' ? reply : typeof reply === 'string' || typeof reply === 'bigint' ? Number(reply) : NaN
  if (!Number.isInteger(n)) throw new Error(`[express-guanaitong] RedisStore: unexpected reply from Redis: ${String(reply)}`)
  return n
}

function checkKey(key: string): void {
  if (typeof key !== 'string' || key === '') throw new TypeError('RedisStore: key must be a non-empty string')
}
