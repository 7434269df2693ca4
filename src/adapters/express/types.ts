/**
 * The options of the Express entry point, their callbacks given Express's `Request` (the
 * framework-neutral forms take the request type as a parameter: src/kernel/options.ts). No
 * `Req` parameter here: scripts/cjs-entry.ts copies type parameters, defaults included, into
 * the CommonJS declarations, where `Request` would name the web Request instead.
 */
import type { Request } from 'express'
import type * as Neutral from '../../kernel/types'

/** Options of `guanaitong()`: the shop's callbacks get Express's `req`. */
export type GuanaitongOptions<Tx = unknown> = Neutral.GuanaitongOptions<Tx, Request>
/** Options of the `handleNotification()` middleware. */
export type HandleOptions<Tx = unknown> = Neutral.HandleOptions<Tx, Request>
/** Options of the `payRoute()` middleware. */
export type PayRouteOptions<Tx = unknown> = Neutral.PayRouteOptions<Tx, Request>
/** What the settlement core takes. */
export type SettleOptions<Tx = unknown> = Neutral.SettleOptions<Tx, Request>
