import { createClient } from './client'
import { DEFAULTS, parseBytes } from './defaults'
import { ConfigError } from './errors'
import { checkSecrets } from './secrets'
import { hasUnsettledLedger } from './settle/unsettled'
import { SIGN_ALGORITHMS } from './signature'
import { MemoryStore } from './stores/memory'
import type { GatClient, GuanaitongOptions, Logger, SettleStore } from './types'

/** Options after defaults: what the router and its middleware are built from. */
export interface ResolvedOptions extends GuanaitongOptions {
  appSecret: readonly string[]
  client: GatClient
  store: SettleStore
  settleOnPay: boolean
  logger: Logger
  toleranceSec: number
  now: () => number
  handlerTimeoutMs: number
  storeTimeoutMs: number
  bodyLimit: number
  parameterLimit: number
  debug: boolean
  notifyPath: string
  payPath: string | false
  retryBudgetThreshold: number
  unsettledAfterMs: number
  sweepEveryMs: number | false
}

const KNOWN: ReadonlyArray<keyof GuanaitongOptions> = [
  'appId', 'appSecret', 'notifyUrl', 'onPaid', 'onPayFailed', 'preparePayment', 'client', 'baseUrl', 'signType',
  'timeoutMs', 'tokenCache', 'store', 'toleranceSec', 'now', 'handlerTimeoutMs', 'storeTimeoutMs', 'bodyLimit',
  'parameterLimit', 'logger', 'debug', 'notifyPath', 'payPath', 'findOrder', 'onMismatch', 'onRetryBudgetLow',
  'retryBudgetThreshold', 'settleOnPay', 'onUnsettled', 'unsettledAfterMs', 'sweepEveryMs',
]
/** Options that configure the default client, meaningless next to a ready `client`. */
const CLIENT_OPTIONS = ['baseUrl', 'signType', 'timeoutMs', 'tokenCache'] as const
const FUNCTIONS = ['onPaid', 'onPayFailed', 'preparePayment', 'findOrder', 'onMismatch', 'onRetryBudgetLow', 'now', 'onUnsettled'] as const
const POSITIVE = ['toleranceSec', 'handlerTimeoutMs', 'storeTimeoutMs', 'timeoutMs', 'parameterLimit', 'unsettledAfterMs'] as const

function suggestion(name: string): string {
  const lower = name.toLowerCase().replace(/[_-]/g, '')
  const match = KNOWN.find((known) => known.toLowerCase() === lower)
  return match ? ` (did you mean "${match}"?)` : ''
}

function checkPath(name: string, value: unknown): void {
  if (typeof value !== 'string' || !value.startsWith('/')) throw new ConfigError(`${name} must be a path starting with "/"`)
}

function checkShape(options: GuanaitongOptions): void {
  if (options === null || typeof options !== 'object') {
    throw new ConfigError('guanaitong(options) needs an options object: { appId, appSecret, notifyUrl, onPaid }')
  }
  for (const name of Object.keys(options)) {
    if (!KNOWN.includes(name as keyof GuanaitongOptions)) throw new ConfigError(`unknown option "${name}"${suggestion(name)}`)
  }
  if (typeof options.appId !== 'string' || options.appId.trim() === '' || options.appId.includes(':')) {
    throw new ConfigError('appId is required: pass your Guanaitong application id as a string')
  }
  if (typeof options.onPaid !== 'function') {
    throw new ConfigError('onPaid must be a function (payment, req) => Promise: it marks your order paid')
  }
  for (const name of FUNCTIONS) {
    if (options[name] !== undefined && typeof options[name] !== 'function') throw new ConfigError(`${name} must be a function`)
  }
  for (const name of POSITIVE) {
    const value = options[name]
    if (value !== undefined && !(typeof value === 'number' && value > 0 && Number.isFinite(value))) {
      throw new ConfigError(`${name} must be a positive number`)
    }
  }
}

function checkCollaborators(options: GuanaitongOptions): void {
  if (options.notifyUrl !== undefined && !/^https?:\/\/[^\s]+$/.test(options.notifyUrl)) {
    throw new ConfigError('notifyUrl must be the absolute http(s) URL Guanaitong can reach, e.g. https://shop.example/gat/notify')
  }
  if (options.notifyUrl !== undefined && options.notifyUrl.length > 254) throw new ConfigError('notifyUrl must be at most 254 characters')
  if (options.signType !== undefined && !SIGN_ALGORITHMS.includes(options.signType)) {
    throw new ConfigError(`signType must be one of ${SIGN_ALGORITHMS.join(', ')}`)
  }
  if (options.client !== undefined) {
    if (typeof options.client?.pay !== 'function') throw new ConfigError('client must come from createClient()')
    const extra = CLIENT_OPTIONS.filter((name) => options[name] !== undefined)
    if (extra.length) throw new ConfigError(`${extra.join(', ')} configure the default client: pass them to createClient() instead`)
  }
  const store = options.store
  const isClaimStore = (s: object) => ['claim', 'complete', 'release'].every((m) => typeof (s as never)[m] === 'function')
  const isTransactional = (s: object) => (s as { transactional?: unknown }).transactional === true && typeof (s as { settle?: unknown }).settle === 'function'
  if (store !== undefined && !(store && typeof store === 'object' && (isClaimStore(store) || isTransactional(store)))) {
    throw new ConfigError('store must implement NotifyStore (claim, complete, release) or TransactionalStore (settle): use MemoryStore, RedisStore, PostgresStore or MysqlStore')
  }
  if (options.settleOnPay !== undefined && typeof options.settleOnPay !== 'boolean') throw new ConfigError('settleOnPay must be true or false')
  if (options.onUnsettled !== undefined && store !== undefined && !hasUnsettledLedger(store)) {
    throw new ConfigError('onUnsettled needs a store that keeps the unsettled ledger (MemoryStore, RedisStore); this store has no watchUnsettled/takeDueUnsettled')
  }
  const every = options.sweepEveryMs
  if (every !== undefined && every !== false && !(typeof every === 'number' && Number.isFinite(every) && every > 0)) {
    throw new ConfigError('sweepEveryMs must be a positive number of milliseconds, or false to run sweepUnsettled() from your own scheduler')
  }
  const logger = options.logger
  if (logger !== undefined && !(logger && typeof logger.warn === 'function' && typeof logger.error === 'function')) {
    throw new ConfigError('logger must have warn() and error() methods (console, pino and winston do)')
  }
  if (options.bodyLimit !== undefined && Number.isNaN(parseBytes(options.bodyLimit))) {
    throw new ConfigError('bodyLimit must be a positive number of bytes or a size like "64kb"')
  }
  const threshold = options.retryBudgetThreshold
  if (threshold !== undefined && !(Number.isInteger(threshold) && threshold >= 1 && threshold <= DEFAULTS.retryBudget)) {
    throw new ConfigError(`retryBudgetThreshold must be a whole number from 1 to ${DEFAULTS.retryBudget}`)
  }
  checkPath('notifyPath', options.notifyPath ?? DEFAULTS.notifyPath)
  if (options.payPath !== false) checkPath('payPath', options.payPath ?? DEFAULTS.payPath)
}

/** Checks every option once, when the router is built, and fills in the defaults. */
export function resolveOptions(options: GuanaitongOptions): ResolvedOptions {
  checkShape(options)
  const appSecret = checkSecrets(options.appSecret)
  checkCollaborators(options)
  const logger = options.logger ?? console
  const client = options.client ?? createClient({
    appId: options.appId, appSecret, baseUrl: options.baseUrl, signType: options.signType,
    timeoutMs: options.timeoutMs, tokenCache: options.tokenCache, now: options.now, logger,
  })
  const payPath = options.payPath ?? DEFAULTS.payPath
  if (payPath !== false && !options.preparePayment) {
    logger.warn('[express-guanaitong] the pay route takes buyer_open_id and total_amount from the request body; ' +
      'set preparePayment to fill them from your session and order (see the README, "Secure pay pattern")')
  }
  const store = options.store ?? new MemoryStore()
  const unsettledAfterMs = options.unsettledAfterMs ?? DEFAULTS.unsettledAfterMs
  if (hasUnsettledLedger(store) && unsettledAfterMs > store.retentionMs) {
    logger.warn(`[express-guanaitong] unsettledAfterMs (${unsettledAfterMs}) is longer than the store's retentionMs (${store.retentionMs}): ` +
      'a sweep can no longer see that an order was settled once its done-marker expired, and may report it')
  }
  return {
    ...options,
    appSecret,
    client,
    store,
    logger,
    toleranceSec: options.toleranceSec ?? DEFAULTS.toleranceSec,
    now: options.now ?? Date.now,
    handlerTimeoutMs: options.handlerTimeoutMs ?? DEFAULTS.handlerTimeoutMs,
    storeTimeoutMs: options.storeTimeoutMs ?? DEFAULTS.storeTimeoutMs,
    bodyLimit: parseBytes(options.bodyLimit ?? DEFAULTS.bodyLimit),
    parameterLimit: options.parameterLimit ?? DEFAULTS.parameterLimit,
    debug: options.debug ?? false,
    notifyPath: options.notifyPath ?? DEFAULTS.notifyPath,
    payPath,
    settleOnPay: options.settleOnPay ?? true,
    retryBudgetThreshold: options.retryBudgetThreshold ?? DEFAULTS.retryBudgetThreshold,
    unsettledAfterMs,
    sweepEveryMs: options.sweepEveryMs ?? DEFAULTS.sweepEveryMs,
  }
}
