/**
 * Every option check of the package, written once. Each entry point (the router, the client,
 * each notify middleware, the pay route, the stores, the token cache, the sandbox) calls
 * `checkOptions` with its table of rules below, built from the same rule functions, so `appId`,
 * a duration or a logger is held to one rule wherever it is passed. A wrong option throws a
 * ConfigError at construction naming the option, what it must be and what it got; an unknown
 * option name gets a did-you-mean.
 */
import { DEFAULTS, parseBytes } from './defaults'
import { ConfigError, ParamError } from './errors'
import { hasReservedCharacter, PAY_FIELDS } from './fields'
import { printable } from './printable'
import { SIGN_ALGORITHMS } from './signature'

/**
 * Node's timers take a signed 32-bit count of ms and fire after 1 ms for anything larger, which
 * would turn a long timeout into an instant one. Every duration option is at most this.
 */
export const MAX_DURATION_MS = 2 ** 31 - 1
const MAX_DURATION_SEC = Math.floor(MAX_DURATION_MS / 1000)

/** Checks one option's value (never undefined); returns the whole message when it is wrong. */
export interface Rule {
  (value: unknown, name: string): string | undefined
  /** Set when the option must be given: the message after its name when it is missing ("is required: …"). */
  required?: string
}

export type Rules = Readonly<Record<string, Rule>>

// ------------------------------------------------------------------ did you mean

/** Optimal string alignment distance: insertions, deletions, substitutions and swaps of neighbours. */
export function editDistance(a: string, b: string): number {
  const rows = a.length + 1
  const cols = b.length + 1
  const d: number[][] = Array.from({ length: rows }, (_, i) => Array.from({ length: cols }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)))
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1)
    }
  }
  return d[a.length][b.length]
}

/** Case, `_` and `-` do not tell option names apart for a typo: `notifyURL`, `notify_url`, `--app-id`. */
function fold(name: string): string {
  return name.toLowerCase().replace(/[_-]/g, '')
}

/**
 * The known name closest to `name`, when it is close enough to be a typo of it: within a third
 * of the longer name's length in edits (at least 1), after ignoring case, `_` and `-`.
 * `appSecert` → `appSecret`, `onPayed` → `onPaid`, `tolerance` → `toleranceSec`.
 */
export function suggest(name: string, known: readonly string[]): string | undefined {
  const folded = fold(name)
  let best: string | undefined
  let bestDistance = Infinity
  for (const candidate of known) {
    const distance = editDistance(folded, fold(candidate))
    const allowed = Math.max(1, Math.floor(Math.max(folded.length, candidate.length) / 3))
    if (distance <= allowed && distance < bestDistance) {
      best = candidate
      bestDistance = distance
    }
  }
  return best
}

/** ` (did you mean "x"?)`, or nothing. */
export function didYouMean(name: string, known: readonly string[], quote = (s: string) => `"${s}"`): string {
  const match = suggest(name, known)
  return match === undefined ? '' : ` (did you mean ${quote(match)}?)`
}

// ------------------------------------------------------------------ describing values

/** What a wrong value was, for the message: its type and, for a short scalar, the value. Never a secret. */
export function describeValue(value: unknown): string {
  if (value === null) return 'null'
  if (value === undefined) return 'undefined'
  if (Array.isArray(value)) return 'an array'
  switch (typeof value) {
    case 'string': return `a string ("${printable(value, 40)}")`
    case 'number': case 'bigint': case 'boolean': return `a ${typeof value} (${String(value)})`
    case 'function': return 'a function'
    default: return `an ${typeof value}`
  }
}

// ------------------------------------------------------------------ rules

/** The same rule, with the option required; `missing` is said after its name when it is not given. */
export function required(rule: Rule, missing: string): Rule {
  const wrapped: Rule = (value, name) => rule(value, name)
  wrapped.required = missing
  return wrapped
}

export const fn: Rule = (value, name) =>
  typeof value === 'function' ? undefined : `${name} must be a function; got ${describeValue(value)}`

export const bool: Rule = (value, name) =>
  typeof value === 'boolean' ? undefined : `${name} must be true or false; got ${describeValue(value)}`

/** A duration in ms: positive, finite, at most MAX_DURATION_MS. */
export const durationMs: Rule = (value, name) => {
  if (typeof value === 'number' && value > 0 && value <= MAX_DURATION_MS) return undefined
  return `${name} must be a positive number of milliseconds, at most ${MAX_DURATION_MS} (Node's timers fire at once for longer delays); got ${describeValue(value)}`
}

/** A duration in whole ms (a store writes it to Redis as PX), with what it means and its default. */
export function wholeMs(meaning: string, fallback: number | string): Rule {
  return (value, name) => {
    if (typeof value === 'number' && Number.isSafeInteger(value) && value > 0 && value <= MAX_DURATION_MS) return undefined
    return `${name} must be a positive whole number of milliseconds, at most ${MAX_DURATION_MS} (${meaning}); got ${describeValue(value)}. Omit it for the default ${fallback}.`
  }
}

/** A duration in seconds, capped like the ms ones; zero allowed only where it means "none". */
export function seconds(allowZero = false): Rule {
  return (value, name) => {
    if (typeof value === 'number' && (allowZero ? value >= 0 : value > 0) && value <= MAX_DURATION_SEC) return undefined
    return `${name} must be a ${allowZero ? 'non-negative' : 'positive'} number of seconds, at most ${MAX_DURATION_SEC}; got ${describeValue(value)}`
  }
}

/** A positive whole number (a count), with what it means and its default when there is one. */
export function positiveInteger(meaning?: string, fallback?: number): Rule {
  return (value, name) => {
    if (typeof value === 'number' && Number.isSafeInteger(value) && value > 0) return undefined
    const omit = fallback === undefined ? '' : `. Omit it for the default ${fallback}.`
    return `${name} must be a positive whole number${meaning ? ` (${meaning})` : ''}; got ${describeValue(value)}${omit}`
  }
}

export function integerRange(min: number, max: number): Rule {
  return (value, name) => (typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max
    ? undefined
    : `${name} must be a whole number from ${min} to ${max}; got ${describeValue(value)}`)
}

/** A non-negative finite number (a factor). */
export const nonNegative: Rule = (value, name) =>
  typeof value === 'number' && Number.isFinite(value) && value >= 0 ? undefined : `${name} must be a non-negative finite number; got ${describeValue(value)}`

export const nonEmptyString: Rule = (value, name) =>
  typeof value === 'string' && value !== '' ? undefined : `${name} must be a non-empty string; got ${describeValue(value)}`

/** `65536`, `"64kb"`, `"1mb"`. */
export const bytes: Rule = (value, name) =>
  (typeof value === 'number' || typeof value === 'string') && !Number.isNaN(parseBytes(value))
    ? undefined
    : `${name} must be a positive whole number of bytes or a size like "64kb"; got ${describeValue(value)}`

export function oneOf(values: readonly string[]): Rule {
  return (value, name) => (values.includes(value as string)
    ? undefined
    : `${name} must be one of ${values.join(', ')}; got ${describeValue(value)}`)
}

/**
 * The application id: a string without surrounding whitespace, `:` (the dedupe key puts one
 * after it) or `&`/`=` (it is signed). The router, the client, verifyNotification and the sandbox
 * all hold it to this.
 */
export const appId: Rule = (value, name) => {
  if (typeof value !== 'string') return `${name} must be a string: your Guanaitong application id (e.g. "20110698"); got ${describeValue(value)}`
  if (value.trim() === '') return `${name} is required: pass your Guanaitong application id as a string (e.g. "20110698")`
  if (value !== value.trim()) return `${name} has leading or trailing whitespace (probably copied with a newline): trim it`
  if (value.includes(':') || hasReservedCharacter(value)) return `${name} must not contain ":", "&" or "="; got ${describeValue(value)}`
  return undefined
}
const APP_ID = required(appId, 'is required: pass your Guanaitong application id as a string (e.g. "20110698")')

/** One secret; never shown in the message. */
export const secret: Rule = (value, name) => {
  if (typeof value !== 'string' || value.trim() === '') {
    return `${name} is missing or blank: pass the app secret of your Guanaitong application (e.g. from process.env.GAT_APPSECRET)`
  }
  if (value !== value.trim()) return `${name} has leading or trailing whitespace (probably copied with a newline): trim it`
  return undefined
}

/** One secret, or several during a rotation (the first signs). */
export const secrets: Rule = (value, name) => {
  if (!Array.isArray(value)) return secret(value, name)
  if (value.length === 0) return `${name} is an empty list: give at least one secret (the first signs)`
  for (let i = 0; i < value.length; i++) {
    const problem = secret(value[i], `${name}[${i}]`)
    if (problem) return problem
  }
  return undefined
}
const APP_SECRET = required(secrets, 'is missing or blank: pass the app secret of your Guanaitong application (e.g. from process.env.GAT_APPSECRET)')

/** The app secret as a checked list (throws ConfigError): one secret, or several during a rotation. */
export function checkSecrets(appSecret: unknown): string[] {
  const problem = secrets(appSecret, 'appSecret')
  if (problem) throw new ConfigError(problem)
  return Array.isArray(appSecret) ? [...appSecret] : [appSecret as string]
}

export const logger: Rule = (value, name) => {
  const l = value as Record<string, unknown> | null
  if (l === null || (typeof l !== 'object' && typeof l !== 'function') || typeof l.warn !== 'function' || typeof l.error !== 'function') {
    return `${name} must have warn() and error() methods (console, pino and winston loggers fit); got ${describeValue(value)}`
  }
  for (const level of ['debug', 'info']) {
    if (l[level] !== undefined && typeof l[level] !== 'function') return `${name}.${level} must be a function when given; got ${describeValue(l[level])}`
  }
  return undefined
}

/**
 * A NotifyStore (the three calls the router makes, `extend` when given, and the lease it renews),
 * or a TransactionalStore (`transactional: true` and `settle`).
 */
export const store: Rule = (value, name) => {
  const s = value as Record<string, unknown> | null
  if (s !== null && typeof s === 'object' && s.transactional === true) {
    return typeof s.settle === 'function' ? undefined : `${name}.settle must be a function in a TransactionalStore; got ${describeValue(s.settle)}`
  }
  if (s === null || typeof s !== 'object' || !['claim', 'complete', 'release'].every((m) => typeof s[m] === 'function')) {
    return `${name} must implement NotifyStore (claim, complete, release) or TransactionalStore (settle): use MemoryStore, RedisStore, PostgresStore or MysqlStore; got ${describeValue(value)}`
  }
  if (s.extend !== undefined && typeof s.extend !== 'function') return `${name}.extend must be a function when given; got ${describeValue(s.extend)}`
  return durationMs(s.leaseMs, `${name}.leaseMs`)
}

export const tokenCache: Rule = (value, name) => {
  const c = value as Record<string, unknown> | null
  if (c === null || typeof c !== 'object' || !['get', 'set', 'invalidate'].every((m) => typeof c[m] === 'function')
    || (c.refresh !== undefined && typeof c.refresh !== 'function')) {
    return `${name} must implement get(), set() and invalidate() (and optionally refresh()): use MemoryTokenCache or RedisTokenCache; got ${describeValue(value)}`
  }
  return undefined
}

export const client: Rule = (value, name) =>
  value !== null && typeof value === 'object' && typeof (value as { pay?: unknown }).pay === 'function'
    ? undefined
    : `${name} must come from createClient(); got ${describeValue(value)}`

/** An absolute http(s) URL without query or fragment (the API host). */
export const baseUrl: Rule = (value, name) => {
  let url: URL | null = null
  try {
    if (typeof value === 'string') url = new URL(value)
  } catch {
    url = null
  }
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    return `${name} ${describeValue(value)} is not an http(s) URL: use e.g. https://openapi.guanaitong.com (production) or https://openapi.guanaitong.tech (test)`
  }
  if (url.search || url.hash) return `${name} must not contain a query string or fragment: give the host only, e.g. https://openapi.guanaitong.com`
  return undefined
}

/** Where Guanaitong posts the result: sent as `notify_url`, so the seed's length and the signing rule's characters apply. */
export const notifyUrl: Rule = (value, name) => {
  const [, max] = PAY_FIELDS.notify_url.length
  if (typeof value !== 'string' || !/^https?:\/\/[^\s]+$/.test(value)) {
    return `${name} must be the absolute http(s) URL Guanaitong can reach, e.g. https://shop.example/gat/notify; got ${describeValue(value)}`
  }
  if (value.length > max) return `${name} must be at most ${max} characters (got ${value.length})`
  if (hasReservedCharacter(value)) return `${name} must not contain "&" or "=" (they would be read as separators of the signed string): use a path, not a query string`
  return undefined
}

export const path: Rule = (value, name) =>
  typeof value === 'string' && value.startsWith('/') ? undefined : `${name} must be a path starting with "/"; got ${describeValue(value)}`

export const pathOrFalse: Rule = (value, name) => (value === false ? undefined : path(value, name))

/** Extra pay parameters a shop lets the pay route pass on: plain names the signing rule can carry. */
export const payParamNames: Rule = (value, name) => {
  if (!Array.isArray(value)) return `${name} must be an array of parameter names; got ${describeValue(value)}`
  for (const key of value) {
    if (typeof key !== 'string' || key.trim() === '' || key !== key.trim() || hasReservedCharacter(key) || key === '__proto__') {
      return `${name} must list plain parameter names (no blanks, "&" or "="); got ${describeValue(key)}`
    }
  }
  return undefined
}

/** 1 to 10 delays (Guanaitong tries at most 10 times), each ≥ 0, together within 24 h. */
export const retrySchedule: Rule = (value, name) => {
  const attempts = DEFAULTS.retryBudget
  if (!Array.isArray(value) || value.length < 1 || value.length > attempts) {
    return `${name} must list 1 to ${attempts} delays (Guanaitong tries at most ${attempts} times)`
  }
  for (let i = 0; i < value.length; i++) {
    const delay: unknown = value[i]
    if (typeof delay !== 'number' || !Number.isFinite(delay) || delay < 0) return `${name}[${i}] must be a non-negative number of milliseconds; got ${describeValue(delay)}`
  }
  if ((value as number[]).reduce((a, b) => a + b, 0) > 24 * 3600 * 1000) {
    return `${name} must fit within 24 h (Guanaitong retries within 24 hours)`
  }
  return undefined
}

/** A settlement key as every store takes it: a non-empty string (a ParamError otherwise). */
export function checkKey(key: unknown): void {
  if (typeof key !== 'string' || key === '') throw new ParamError('key', `must be a non-empty string; got ${describeValue(key)}`)
}

// ------------------------------------------------------------------ checking

/**
 * Checks `options` against `rules` and throws a ConfigError, prefixed with `where`, for the first
 * problem: not an object, an unknown name (with a did-you-mean), a required option missing, a
 * value its rule refuses.
 */
export function checkOptions(where: string, options: unknown, rules: Rules, example: string): void {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new ConfigError(`${where}: options are required as an object, e.g. ${example}; got ${describeValue(options)}`)
  }
  const known = Object.keys(rules)
  for (const name of Object.keys(options)) {
    if (!Object.prototype.hasOwnProperty.call(rules, name)) {
      throw new ConfigError(`${where}: unknown option "${printable(name, 40)}"${didYouMean(name, known) || elsewhere(name, where, known)}`)
    }
  }
  for (const name of known) {
    const rule = rules[name]
    const value = (options as Record<string, unknown>)[name]
    if (value === undefined) {
      if (rule.required) throw new ConfigError(`${where}: ${name} ${rule.required}`)
      continue
    }
    const problem = rule(value, name)
    if (problem) throw new ConfigError(`${where}: ${problem}`)
  }
}

/**
 * For a name that is another entry point's option (one options object passed to every
 * middleware): where it belongs, and what this one takes.
 */
function elsewhere(name: string, where: string, known: readonly string[]): string {
  const owners = ENTRY_POINTS.filter(([other, rules]) => other !== where && Object.prototype.hasOwnProperty.call(rules, name))
  if (owners.length === 0) return ''
  return ` (it is an option of ${owners.map(([other]) => other).join(', ')}; ${where} takes ${known.join(', ')})`
}

/** The options `rules` knows, taken from a larger set (the router hands each middleware its own). */
export function pickOptions(options: object, rules: Rules): Record<string, unknown> {
  const picked: Record<string, unknown> = {}
  for (const name of Object.keys(rules)) {
    const value = (options as Record<string, unknown>)[name]
    if (value !== undefined) picked[name] = value
  }
  return picked
}

// ------------------------------------------------------------------ the entry points' options

export const PARSE_RULES: Rules = { bodyLimit: bytes, parameterLimit: positiveInteger(), bodyTimeoutMs: durationMs, logger }

/** A non-empty list of signature algorithms, each one the package knows. */
export const signAlgorithms: Rule = (value, name) => {
  if (Array.isArray(value) && value.length > 0 && value.every((a) => SIGN_ALGORITHMS.includes(a as never))) return undefined
  return `${name} must be a non-empty list of ${SIGN_ALGORITHMS.join(', ')} (e.g. ['sha256']); got ${describeValue(value)}`
}

export const VERIFY_RULES: Rules = {
  appId: APP_ID, appSecret: APP_SECRET, toleranceSec: seconds(), notifySignTypes: signAlgorithms, now: fn, debug: bool, logger,
}

export const DEDUPE_RULES: Rules = { store, storeTimeoutMs: durationMs, logger }

export const HANDLE_RULES: Rules = {
  onPaid: required(fn, 'is required: a function (payment, req) => Promise that marks your order paid'),
  onPayFailed: fn,
  handlerTimeoutMs: durationMs,
  logger,
  findOrder: fn,
  onMismatch: fn,
  onRetryBudgetLow: fn,
  retryBudgetThreshold: integerRange(1, DEFAULTS.retryBudget),
}

export const PAY_ROUTE_RULES: Rules = {
  client: required(client, 'is required: a client from createClient()'),
  preparePayment: fn,
  notifyUrl,
  logger,
  extraPayParams: payParamNames,
  payFormBodies: bool,
  // Settling on the pay answer: the settlement core's options, all optional here.
  settleOnPay: bool,
  unsettledAfterMs: durationMs,
  appId,
  now: fn,
  store,
  storeTimeoutMs: durationMs,
  ...Object.fromEntries(Object.entries(HANDLE_RULES).map(([name, rule]) => [name, name === 'onPaid' ? fn : rule])),
}

export const CLIENT_RULES: Rules = {
  appId: APP_ID,
  appSecret: APP_SECRET,
  baseUrl,
  signType: oneOf(SIGN_ALGORITHMS),
  timeoutMs: durationMs,
  tokenCache,
  now: fn,
  logger,
}

/** `guanaitong()` takes every middleware's options, the default client's, and its two paths. */
export const ROUTER_RULES: Rules = {
  ...PAY_ROUTE_RULES,
  ...PARSE_RULES,
  ...VERIFY_RULES,
  ...DEDUPE_RULES,
  ...HANDLE_RULES,
  ...CLIENT_RULES,
  client,
  notifyPath: path,
  payPath: pathOrFalse,
  onUnsettled: fn,
  sweepEveryMs: (value, name) => (value === false ? undefined : durationMs(value, name)),
}

export const MEMORY_STORE_RULES: Rules = {
  leaseMs: wholeMs('how long a claim lasts before another request may take over', DEFAULTS.leaseMs),
  retentionMs: wholeMs('how long a done-marker is kept; keep it above 24 h (Guanaitong retries for 24 h)', DEFAULTS.retentionMs),
  maxEntries: positiveInteger('the most keys held in memory', DEFAULTS.maxEntries),
  now: fn,
  logger,
}

const REDIS_CLIENT = required((value, name) => (value === null ? `${name} must be a Redis client; got null` : undefined),
  'is required: pass a connected ioredis client (new Redis(url)) or node-redis client (await createClient({ url }).connect())')

export const REDIS_STORE_RULES: Rules = {
  client: REDIS_CLIENT,
  prefix: (value, name) => (typeof value === 'string' && !/[{}]/.test(value)
    ? undefined
    : `${name} must be a string without { or } such as "gat:" (the store adds a hash tag around each key itself); got ${describeValue(value)}`),
  leaseMs: MEMORY_STORE_RULES.leaseMs,
  retentionMs: MEMORY_STORE_RULES.retentionMs,
  waitReplicas: (value, name) => (Number.isSafeInteger(value) && (value as number) >= 0
    ? undefined
    : `${name} must be a whole number, 0 or more (how many replicas must acknowledge a done-marker before complete() resolves; 0 does not wait); got ${describeValue(value)}`),
  waitTimeoutMs: wholeMs("how long complete() waits for the replicas; keep it below the client's command timeout", DEFAULTS.waitTimeoutMs),
}

/** A pool with these methods (a SQL store takes a pool or a driver: `checkPoolOrDriver`). */
function sqlPool(methods: readonly string[], example: string): Rule {
  return (value, name) => {
    const p = value as Record<string, unknown> | null
    if (p !== null && typeof p === 'object' && methods.every((m) => typeof p[m] === 'function')) return undefined
    return `${name} must be ${example} (with ${methods.join('() and ')}()); got ${describeValue(value)}`
  }
}

const SQL_DRIVER: Rule = (value, name) => {
  const d = value as Record<string, unknown> | null
  return d !== null && typeof d === 'object' && typeof d.query === 'function' && typeof d.begin === 'function'
    ? undefined
    : `${name} must be a SqlDriver with query() and begin() (README, "Other drivers"); got ${describeValue(value)}`
}

const SQL_STORE_RULES: Rules = {
  table: (value, name) => (typeof value === 'string' ? undefined : `${name} must be a table name such as "gat_settlements"; got ${describeValue(value)}`),
  retentionMs: MEMORY_STORE_RULES.retentionMs,
  purgeEveryMs: (value, name) => (value === false ? undefined : wholeMs('how often old done-markers are deleted; false to call purge() yourself', DEFAULTS.purgeEveryMs)(value, name)),
  createTable: bool,
}

function sqlStoreRules(pool: Rule): Rules {
  return { pool, driver: SQL_DRIVER, ...SQL_STORE_RULES }
}

export const POSTGRES_STORE_RULES = sqlStoreRules(sqlPool(['connect', 'query'], 'a node-postgres Pool (new pg.Pool({ connectionString }))'))
export const MYSQL_STORE_RULES = sqlStoreRules(sqlPool(['getConnection', 'query'], "a mysql2 promise pool (mysql.createPool(url) from 'mysql2/promise', or pool.promise())"))

/** A SQL store talks through exactly one of a pool and a driver. */
export function checkPoolOrDriver(where: string, options: { pool?: unknown; driver?: unknown }, example: string): void {
  if ((options.pool === undefined) === (options.driver === undefined)) {
    throw new ConfigError(`${where}: pass either pool (${example}) or driver (a SqlDriver of your own), ${options.pool === undefined ? 'not neither' : 'not both'}`)
  }
}

export const REDIS_TOKEN_CACHE_RULES: Rules = {
  client: REDIS_CLIENT,
  prefix: (value, name) => (typeof value === 'string' ? undefined : `${name} must be a string such as "gat:token:"; got ${describeValue(value)}`),
  lockMs: wholeMs('how long a refresh may hold the lock; at least the client timeoutMs', 10_000),
  waitMs: wholeMs("how long to wait for another instance's refresh", 'lockMs + 5000'),
  pollMs: wholeMs('how often a waiting instance looks for the new token', 50),
  now: fn,
}

export const SANDBOX_RULES: Rules = {
  appId,
  appSecret: secret,
  signType: oneOf(SIGN_ALGORITHMS),
  port: integerRange(0, 65535),
  host: nonEmptyString,
  tokenTtlSec: seconds(),
  toleranceSec: seconds(true),
  timeScale: nonNegative,
  retrySchedule,
  notifyTimeoutMs: durationMs,
  now: fn,
}

/** Every entry point and its rules, to say where a misplaced option belongs. */
const ENTRY_POINTS: ReadonlyArray<readonly [string, Rules]> = [
  ['guanaitong()', ROUTER_RULES],
  ['createClient()', CLIENT_RULES],
  ['parseNotification()', PARSE_RULES],
  ['verifyNotification()', VERIFY_RULES],
  ['dedupeNotification()', DEDUPE_RULES],
  ['handleNotification()', HANDLE_RULES],
  ['payRoute()', PAY_ROUTE_RULES],
]
