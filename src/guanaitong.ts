import { createClient } from './client'
import { DEFAULTS, parseBytes } from './kernel/defaults'
import { ConfigError } from './kernel/errors'
import { toLogger } from './observe/log'
import type { CoreRequest, CoreResponse } from './core/http'
import { createNotifyHandler } from './core/notify/handler'
import { createPayHandler } from './core/pay/handler'
import { createSettlement } from './core/settle/settle'
import { hasUnsettledLedger, startSweeping } from './core/settle/unsettled'
import { MemoryStore } from './stores/memory'
import type { GatClient, GuanaitongOptions, PayRouteOptions, SettleStore } from './kernel/types'
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
  bodyTimeoutMs: number
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
    toLogger(logger).warn({}, '[express-guanaitong] the pay route takes buyer_open_id and total_amount from the request body; ' +
      'set preparePayment to fill them from your session and order (see the README, "The secure pay pattern")')
  }
  const store = options.store ?? new MemoryStore({ logger })
  if (options.onUnsettled !== undefined && !hasUnsettledLedger(store)) {
    throw new ConfigError('guanaitong(): onUnsettled needs a store that keeps the unsettled ledger (MemoryStore, RedisStore, PostgresStore, MysqlStore); this store has no watchUnsettled/takeDueUnsettled')
  }
  const unsettledAfterMs = options.unsettledAfterMs ?? DEFAULTS.unsettledAfterMs
  if (hasUnsettledLedger(store) && unsettledAfterMs > store.retentionMs) {
    toLogger(logger).warn({}, `[express-guanaitong] unsettledAfterMs (${unsettledAfterMs}) is longer than the store's retentionMs (${store.retentionMs}): ` +
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
    bodyTimeoutMs: options.bodyTimeoutMs ?? DEFAULTS.bodyTimeoutMs,
    debug: options.debug ?? false,
    notifyPath: options.notifyPath ?? DEFAULTS.notifyPath,
    payPath,
    settleOnPay: options.settleOnPay ?? true,
    retryBudgetThreshold: options.retryBudgetThreshold ?? DEFAULTS.retryBudgetThreshold,
    unsettledAfterMs,
    sweepEveryMs: options.sweepEveryMs ?? DEFAULTS.sweepEveryMs,
  }
}

/** One of the two routes: takes a request, never rejects. */
export type CoreHandler<Req> = (request: CoreRequest<Req>) => Promise<CoreResponse>

/**
 * The package without a framework: both routes as `CoreRequest → CoreResponse` handlers, built
 * from options checked and defaulted once. Every adapter (src/adapters/*) is this plus the
 * translation to and from its framework.
 */
export interface Guanaitong<Req> {
  /** The options after checks and defaults. */
  readonly options: ResolvedOptions
  /** `POST {notifyPath}`: Guanaitong's notifications. */
  readonly notify: CoreHandler<Req>
  /** `POST {payPath}`: the cashier page's pay; undefined with `payPath: false`. */
  readonly pay: CoreHandler<Req> | undefined
  /** The handler for a request to `path` (below where the routes are mounted), or undefined when it is not one of ours. */
  route(method: string, path: string): CoreHandler<Req> | undefined
  /**
   * Stops the unsettled sweep and resolves once a sweep in progress (its `onUnsettled` calls
   * included) has finished, so the store can be closed after it. The routes keep answering:
   * stop taking requests first. May be called again; resolves at once when nothing sweeps.
   */
  close(): Promise<void>
}

/** Builds both routes and starts the unsettled sweep (with `onUnsettled`); see {@link Guanaitong}. */
export function createGuanaitong<Req, Tx = unknown>(options: GuanaitongOptions<Tx, Req>): Guanaitong<Req> {
  const resolved = resolveOptions(options as GuanaitongOptions)
  const logger = toLogger(resolved.logger)
  const { store, storeTimeoutMs } = resolved
  const notify = createNotifyHandler<Req>({
    limits: { bodyLimit: resolved.bodyLimit, parameterLimit: resolved.parameterLimit, bodyTimeoutMs: resolved.bodyTimeoutMs },
    verify: {
      appId: resolved.appId, secrets: resolved.appSecret, toleranceSec: resolved.toleranceSec, now: resolved.now,
      debug: resolved.debug, algorithms: resolved.notifySignTypes,
    },
    settle: createSettlement(resolved) as never,
    store,
    storeTimeoutMs,
    logger,
  })
  const pay = resolved.payPath === false ? undefined : createPayHandler<Req>(resolved as PayRouteOptions<unknown, Req>)
  let close = async (): Promise<void> => undefined
  const { onUnsettled, sweepEveryMs } = resolved
  if (onUnsettled && sweepEveryMs !== false && hasUnsettledLedger(store)) {
    close = startSweeping({ store, onUnsettled, everyMs: sweepEveryMs, logger: resolved.logger, storeTimeoutMs, now: resolved.now })
  }
  return {
    options: resolved,
    notify,
    pay,
    route(method, path) {
      if (method !== 'POST') return undefined
      if (path === resolved.notifyPath) return notify
      return path === resolved.payPath ? pay : undefined
    },
    close: () => close(),
  }
}
