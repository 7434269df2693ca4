/**
 * The contracts, each written beside what owns it; re-exported here so `import type { … } from
 * './kernel/types'` (and the package's `export type *`) keeps working. The contracts of a store,
 * the client or a route that nothing below them names live beside them (src/stores, src/client, src/core).
 */
export type { SignAlgorithm, AppSecret } from './signature'
export type { Fields } from './fields'
export type { RejectReason } from './errors'
export type { LogFields, Logger } from './logger'
export type { Notification, Payment, PayFailedNotice, SettleContext, OrderSummary, OrderMismatch, SettledSummary, ChannelMismatch, Mismatch, RetryBudgetInfo } from './notification'
export type { WatchedFlag, ClaimResult, PeekResult, CrossCheck, NotifyStore, TransactionalResult, TransactionalStore, UnsettledReason, UnsettledRecord, UnsettledLedger, SettleStore, StoreOptions, CachedToken, TokenCache } from './store'
export type { PayParams, PayRequestFields, GatClient } from './client'
export type { GuanaitongOptions, SettleOptions, PayRouteOptions, ParseOptions, VerifyOptions, DedupeOptions, HandleOptions } from './options'
