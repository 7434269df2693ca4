/**
 * The options of the Express entry point, their callbacks given Express's `Request` (the
 * framework-neutral forms take the request type as a parameter: src/kernel/types.ts).
 */
import type { Request } from 'express'
import type * as Neutral from '../../kernel/types'

/** Options of `guanaitong()`: the shop's callbacks get Express's `req`. */
export type GuanaitongOptions<Tx = unknown, Req = Request> = Neutral.GuanaitongOptions<Tx, Req>
/** Options of the `handleNotification()` middleware. */
export type HandleOptions<Tx = unknown, Req = Request> = Neutral.HandleOptions<Tx, Req>
/** Options of the `payRoute()` middleware. */
export type PayRouteOptions<Tx = unknown, Req = Request> = Neutral.PayRouteOptions<Tx, Req>
/** What the settlement core takes. */
export type SettleOptions<Tx = unknown, Req = Request> = Neutral.SettleOptions<Tx, Req>
