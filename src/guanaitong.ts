import { createClient } from './client'
import { DEFAULTS, parseBytes } from './kernel/defaults'
import { ConfigError } from './kernel/errors'
import { toLogger } from './observe/log'
import { hasUnsettledLedger } from './core/settle/unsettled'
import { MemoryStore } from './stores/memory'
import type { GatClient, GuanaitongOptions, SettleStore } from './kernel/types'
import { checkOptions, checkSecrets, ROUTER_RULES } from './kernel/validate'

/** Options after defaults: what the router and its middleware are built from. */
export interface ResolvedOptions extends GuanaitongOptions {
  appSecret: readonly string[]
  client: GatClient
  store: SettleStore
  settleOnPay: boolean
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

/** Options that configure the default client, meaningless next to a ready `client`. */
const CLIENT_OPTIONS = ['baseUrl', 'signType', 'timeoutMs', 'tokenCache'] as const

/** Checks every option once, when the router is built (src/kernel/validate.ts), and fills in the defaults. */
export function resolveOptions(options: GuanaitongOptions): ResolvedOptions {
  checkOptions('guanaitong()', options, ROUTER_RULES, '{ appId, appSecret, notifyUrl, onPaid }')
  const appSecret = checkSecrets(options.appSecret)
  if (options.client !== undefined) {
    const extra = CLIENT_OPTIONS.filter((name) => options[name] !== undefined)
    if (extra.length) throw new ConfigError(`guanaitong(): ${extra.join(', ')} configure the default client: pass them to createClient() instead`)
  }
  const logger = options.logger
  const client = options.client ?? createClient({
    appId: options.appId, appSecret, baseUrl: options.baseUrl, signType: options.signType,
    timeoutMs: options.timeoutMs, tokenCache: options.tokenCache, now: options.now, logger,
  })
  const payPath = options.payPath ?? DEFAULTS.payPath
  if (payPath !== false && !options.preparePayment) {
    toLogger(logger).warn('[express-guanaitong] the pay route takes buyer_open_id and total_amount from the request body; ' +
      'set preparePayment to fill them from your session and order (see the README, "The secure pay pattern")')
  }
  const store = options.store ?? new MemoryStore({ logger })
  if (options.onUnsettled !== undefined && !hasUnsettledLedger(store)) {
    throw new ConfigError('guanaitong(): onUnsettled needs a store that keeps the unsettled ledger (MemoryStore, RedisStore, PostgresStore, MysqlStore); this store has no watchUnsettled/takeDueUnsettled')
  }
  const unsettledAfterMs = options.unsettledAfterMs ?? DEFAULTS.unsettledAfterMs
  if (hasUnsettledLedger(store) && unsettledAfterMs > store.retentionMs) {
    toLogger(logger).warn(`[express-guanaitong] unsettledAfterMs (${unsettledAfterMs}) is longer than the store's retentionMs (${store.retentionMs}): ` +
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
