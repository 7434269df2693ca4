import { randomUUID } from 'node:crypto'
import { DEFAULTS } from '../kernel/defaults'
import { ConfigError, GuanaitongError } from '../kernel/errors'
import type { ClaimResult, CrossCheck, NotifyStore, PeekResult, StoreOptions, UnsettledLedger, UnsettledRecord } from '../kernel/types'
import { checkKey, checkOptions, REDIS_STORE_RULES } from '../kernel/validate'
import { LuaScript, redisAdapter, type RedisAdapter, type RedisClientLike } from './redis-adapter'
import { TurnBatch } from './turn-batch'
import { checkLedgerKey, checkLimit, checkTake, checkUnsettledRecord, decodeUnsettled, encodeUnsettled } from './unsettled-record'


// Keys of one notification key K, both in the hash slot of K (Redis Cluster safe):
//   <prefix>{K}        hash: a = claims so far, o = owner of the latest claim, d = done,
//                      m = the done-marker's memo, w = watched (the ledger holds K's record),
//                      n = a note left by peek (a failure notice, on the payment key)
//   <prefix>{K}:lease  string: the owner while its lease runs, PX leaseMs
// The hash outlives the lease (max(leaseMs, retentionMs)), so the attempt counter survives a
// release and a lease that ran out, and the owner is known until someone else claims.
// Scripts answering about a key return {status, w, m or n}: Lua's false is a nil element.

/** ARGV: owner, leaseMs, keepMs. Returns {0, w, m} done, {-1} busy, else {attempt, w, n} of the new claim. */
const CLAIM = new LuaScript(`
local f = redis.call('HMGET', KEYS[1], 'd', 'w', 'm', 'n')
if f[1] then return {0, f[2], f[3]} end
if redis.call('EXISTS', KEYS[2]) == 1 then return {-1} end
local attempt = redis.call('HINCRBY', KEYS[1], 'a', 1)
redis.call('HSET', KEYS[1], 'o', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
return {attempt, f[2], f[4]}
`)

/** ARGV: owner, retentionMs, memo (optional). Marks done when owner made the latest claim. */
const COMPLETE = new LuaScript(`
if redis.call('HGET', KEYS[1], 'o') ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[2])
redis.call('HDEL', KEYS[1], 'o', 'n')
redis.call('HSET', KEYS[1], 'd', '1')
if ARGV[3] then redis.call('HSET', KEYS[1], 'm', ARGV[3]) end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`)

/** ARGV: keepMs, note (optional). Returns {0, w, m} done, {-1, w} busy, {1, w} open (noted). */
const PEEK = new LuaScript(`
local f = redis.call('HMGET', KEYS[1], 'd', 'w', 'm')
if f[1] then return {0, f[2], f[3]} end
if redis.call('EXISTS', KEYS[2]) == 1 then return {-1, f[2]} end
if ARGV[2] then
  redis.call('HSET', KEYS[1], 'n', ARGV[2])
  if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[1]) then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
end
return {1, f[2]}
`)

/** ARGV: keepForMs, or none to clear. Marks (or unmarks) a key watched; a mark never shortens the key's life. */
const MARK = new LuaScript(`
if not ARGV[1] then return redis.call('HDEL', KEYS[1], 'w') end
redis.call('HSET', KEYS[1], 'w', '1')
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[1]) then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
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

// The unsettled ledger: two keys under one hash tag, so one Redis Cluster slot holds both:
//   <prefix>{unsettled}:due      sorted set: member = unsettled key, score = deadline (epoch ms)
//   <prefix>{unsettled}:records  hash: unsettled key -> the record as JSON, without its deadline
// A notification key always holds ":paid:" or ":failed:", so it never maps to these names.

/** KEYS: due, records. ARGV: key, deadline, json. */
const WATCH = new LuaScript(`
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
return 1
`)

/** KEYS: due, records. ARGV: the keys to remove (at most REMOVALS_PER_CALL). */
const RESOLVE = new LuaScript(`
redis.call('ZREM', KEYS[1], unpack(ARGV))
redis.call('HDEL', KEYS[2], unpack(ARGV))
return 1
`)

/** Keys removed by one RESOLVE call: well below Lua's limit on unpacked arguments (about 8 000). */
const REMOVALS_PER_CALL = 500

/**
 * KEYS: due, records. ARGV: now, limit, leaseUntil. Returns json, deadline, json, deadline, …
 * of the due records, soonest first, and moves each one's deadline to leaseUntil. A member
 * without a record (never written that way, but harmless) is dropped.
 */
const TAKE_DUE = new LuaScript(`
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[2]))
local out = {}
for i = 1, #due, 2 do
  local json = redis.call('HGET', KEYS[2], due[i])
  if json then
    redis.call('ZADD', KEYS[1], ARGV[3], due[i])
    out[#out + 1] = json
    out[#out + 1] = due[i + 1]
  else
    redis.call('ZREM', KEYS[1], due[i])
  end
end
return out
`)

/** KEYS: due, records. ARGV: limit. Returns json, deadline, … soonest first. */
const LIST = new LuaScript(`
local due = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1, 'WITHSCORES')
local out = {}
for i = 1, #due, 2 do
  local json = redis.call('HGET', KEYS[2], due[i])
  if json then
    out[#out + 1] = json
    out[#out + 1] = due[i + 1]
  end
end
return out
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
 *
 * It also keeps the unsettled ledger (pays not settled yet), shared by every instance on the
 * same prefix: a sorted set by deadline and a hash of records, in one Cluster slot.
 */
export class RedisStore implements NotifyStore, UnsettledLedger, CrossCheck {
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
  /** Removals from the ledger waiting for this tick's RESOLVE call (see `resolveUnsettled`). */
  private readonly removals = new TurnBatch<string>((keys) => this.redis.evalScript(RESOLVE, this.unsettledKeys, keys).then(() => {}), REMOVALS_PER_CALL)

  constructor(options: RedisStoreOptions) {
    checkOptions('RedisStore', options, REDIS_STORE_RULES, '{ client: new Redis(url) }')
    this.redis = redisAdapter(options.client, 'RedisStore')
    this.leaseMs = options.leaseMs ?? DEFAULTS.leaseMs
    this.retentionMs = options.retentionMs ?? DEFAULTS.retentionMs
    this.prefix = options.prefix ?? 'gat:'
    const { waitReplicas = 0, waitTimeoutMs } = options
    if (waitReplicas === 0 && waitTimeoutMs !== undefined) {
      throw new ConfigError('RedisStore: waitTimeoutMs needs waitReplicas (the number of replicas to wait for), e.g. { waitReplicas: 1, waitTimeoutMs: 100 }')
    }
    this.waitReplicas = waitReplicas
    this.waitTimeoutMs = waitTimeoutMs ?? DEFAULTS.waitTimeoutMs
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
    const [reply, watched, text] = keyState(raw)
    if (reply === 0) return text === undefined ? { status: 'done', watched } : { status: 'done', watched, memo: text }
    if (reply < 0) return { status: 'busy' }
    return text === undefined ? { status: 'claimed', owner, attempt: reply, watched } : { status: 'claimed', owner, attempt: reply, watched, note: text }
  }

  /** Where `key` stands, without claiming it; leaves `note` on it when it is open (see `CrossCheck`). */
  async peek(key: string, note?: string): Promise<PeekResult> {
    checkKey(key)
    const args: (string | number)[] = [this.keepMs]
    if (typeof note === 'string') args.push(note)
    const [reply, watched, memo] = keyState(await this.redis.evalScript(PEEK, this.keysOf(key), args))
    if (reply === 0) return memo === undefined ? { status: 'done', watched } : { status: 'done', watched, memo }
    return { status: reply < 0 ? 'busy' : 'open', watched }
  }

  /**
   * Marks the key done when `owner` made its latest claim. With `waitReplicas`, then waits (WAIT)
   * until that many replicas have the done-marker, and rejects with STORE_NOT_REPLICATED when
   * fewer acknowledged within `waitTimeoutMs`: the marker is on the primary, but a failover
   * before it replicates would lose it.
   */
  async complete(key: string, owner: string, memo?: string): Promise<boolean> {
    checkKey(key)
    const keys = this.keysOf(key)
    const args: (string | number)[] = [String(owner), this.retentionMs]
    if (typeof memo === 'string') args.push(memo)
    const done = toInteger(await this.redis.evalScript(COMPLETE, keys, args)) === 1
    if (done && this.waitReplicas > 0) {
      const acknowledged = toInteger(await this.redis.waitForReplicas(keys[0], this.waitReplicas, this.waitTimeoutMs))
      if (acknowledged < this.waitReplicas) {
        throw new GuanaitongError(`RedisStore: the done-marker of ${key} reached ${acknowledged} of ${this.waitReplicas} replica(s) ` +
          `within ${this.waitTimeoutMs} ms; it is stored on the primary, but a failover before it replicates would lose it ` +
          'and a later duplicate would run the handler again', 'STORE_NOT_REPLICATED')
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

  /** The ledger's two keys: the deadline index and the records. */
  get unsettledKeys(): [due: string, records: string] {
    return [`${this.prefix}{unsettled}:due`, `${this.prefix}{unsettled}:records`]
  }

  /**
   * Marks the key watched (in its own hash, so its claim reads the mark in the same script), then
   * writes the record: two calls, as the two live in different Cluster slots. The mark lasts
   * until keepMs past the record's deadline at least, and never shortens the key's life.
   */
  async watchUnsettled(record: UnsettledRecord): Promise<void> {
    const checked = checkUnsettledRecord('RedisStore', record)
    const keepFor = Math.max(0, checked.deadline - Date.now()) + this.keepMs
    await this.redis.evalScript(MARK, this.keysOf(checked.key).slice(0, 1), [keepFor])
    await this.redis.evalScript(WATCH, this.unsettledKeys, [checked.key, checked.deadline, encodeUnsettled(checked)])
  }

  /**
   * Clears the key's mark, then removes the record; the removals asked for in one event-loop turn
   * share one call (TurnBatch). Resolves when the call carrying this key answered.
   */
  async resolveUnsettled(key: string): Promise<void> {
    checkLedgerKey('RedisStore', key)
    await this.redis.evalScript(MARK, this.keysOf(key).slice(0, 1), [])
    return this.removals.add(key)
  }

  async listUnsettled(limit?: number): Promise<UnsettledRecord[]> {
    const most = checkLimit('RedisStore', limit)
    return decodePairs(await this.redis.evalScript(LIST, this.unsettledKeys, [most]))
  }

  async takeDueUnsettled(now: number, limit: number, leaseMs: number): Promise<UnsettledRecord[]> {
    const most = checkLimit('RedisStore', limit)
    checkTake('RedisStore', now, leaseMs)
    return decodePairs(await this.redis.evalScript(TAKE_DUE, this.unsettledKeys, [now, most, now + leaseMs]))
  }
}

/** A script's flat reply `json, deadline, json, deadline, …` as records. */
function decodePairs(reply: unknown): UnsettledRecord[] {
  if (!Array.isArray(reply) || reply.length % 2 !== 0) {
    throw unexpectedReply(reply)
  }
  const records: UnsettledRecord[] = []
  for (let i = 0; i < reply.length; i += 2) records.push(decodeUnsettled(String(reply[i]), toInteger(reply[i + 1])))
  return records
}

/** A key script's reply `{status, w, text}`: the status, whether the key is watched, and the memo or note (nil when none). */
function keyState(reply: unknown): [status: number, watched: boolean, text: string | undefined] {
  if (!Array.isArray(reply) || reply.length < 1) throw unexpectedReply(reply)
  const text = reply[2]
  return [toInteger(reply[0]), reply[1] !== null && reply[1] !== undefined, text === null || text === undefined ? undefined : String(text)]
}

function toInteger(reply: unknown): number {
  const n = typeof reply === 'number' ? reply : typeof reply === 'string' || typeof reply === 'bigint' ? Number(reply) : NaN
  if (!Number.isInteger(n)) throw unexpectedReply(reply)
  return n
}

/** A reply no script of this store gives: another script under the same name, or a proxy in the way. */
function unexpectedReply(reply: unknown): GuanaitongError {
  return new GuanaitongError(`RedisStore: unexpected reply from Redis: ${String(reply).slice(0, 80)}`, 'STORE_FAILED')
}

/** Options of `new RedisStore()`. */
export interface RedisStoreOptions extends StoreOptions {
  /**
   * A ready ioredis client (`new Redis(url)`, or a `Cluster`) or a connected node-redis client
   * (`await createClient({ url }).connect()`). The store does not connect or close it.
   *
   * Make it fail fast: a notification is answered `fail` on a store error and Guanaitong
   * retries, which beats hanging until the router's `storeTimeoutMs`. With ioredis:
   * `new Redis(url, { maxRetriesPerRequest: 1, enableOfflineQueue: false, commandTimeout: 1000 })`
   * (`maxRetriesPerRequest: 0` fails faster still). With node-redis:
   * `createClient({ url, disableOfflineQueue: true, socket: { connectTimeout: 1000 } })`.
   */
  client: RedisClientLike
  /** Prefix of every key. Default "gat:". Use one per application when several share a Redis. */
  prefix?: string
  /**
   * Replicas that must acknowledge a done-marker (Redis `WAIT`) before `complete` resolves, so a
   * `success` answered to Guanaitong survives a failover. Default 0: no wait; replication is
   * asynchronous and a primary lost right after `complete` can take the marker with it. When
   * fewer acknowledge within `waitTimeoutMs`, `complete` rejects (`STORE_NOT_REPLICATED`); the
   * router logs it and still answers `success`, because the handler has run.
   * See docs/redis-cluster.md.
   */
  waitReplicas?: number
  /**
   * How long `complete` waits for `waitReplicas`, ms. Default 100. WAIT holds the connection it
   * runs on: while a shard lacks replicas, each `complete` there takes this long and the commands
   * queued behind it on that connection wait too. Keep it small, and below the client's command
   * timeout. Only with `waitReplicas`.
   */
  waitTimeoutMs?: number
}
