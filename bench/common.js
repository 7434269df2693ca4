// What the load generator sends: typical notifications and pay orders.
import { sign } from '../dist/index.js'
import { signNotification, encodeForm } from '../dist/testing/index.js'
import { APP_ID, APP_SECRET } from './config.js'

/** A typical payment notification, as Guanaitong posts it, signed now (or at `nowMs`). */
export function notification(outerTradeNo, nowMs = Date.now()) {
  return signNotification({
    appid: APP_ID,
    outer_trade_no: outerTradeNo,
    trade_no: `2025112520${outerTradeNo.slice(-8).padStart(8, '0')}`,
    buyer_open_id: 'c1f0a8b2e6d94c1e8f3a5b7d9e2c4f60',
    total_amount: '128.50',
    // No '&' or '=': the router refuses them in signed values (RESERVED_CHARACTER).
    attach: 'cart-77421',
  }, APP_SECRET, 'sha1', () => nowMs)
}

export function notificationBody(outerTradeNo, nowMs) {
  return encodeForm(notification(outerTradeNo, nowMs))
}

/** The pay parameters a cashier page posts (JSON); the order number is made unique by the caller. */
export function payParams(outerTradeNo) {
  return {
    buyer_open_id: 'c1f0a8b2e6d94c1e8f3a5b7d9e2c4f60',
    reason: 'Order 77421',
    total_amount: '128.50',
    outer_trade_no: outerTradeNo,
    asset_type: '1',
    asset_open_id: 'a5d8e2f4b6c84e1a9c3b7d5f0e2a4c68',
  }
}

/**
 * The form the client itself would send to /platformDealer/employee/pay for `payParams`: the
 * same fields, the public ones (appid, timestamp, version, access_token) and the sign.
 */
export function signedPayBody(outerTradeNo, accessToken, nowMs = Date.now()) {
  const fields = {
    ...payParams(outerTradeNo),
    access_token: accessToken,
    appid: APP_ID,
    timestamp: String(Math.floor(nowMs / 1000)),
    version: '1.0.0',
  }
  fields.sign = sign(fields, APP_SECRET)
  return new URLSearchParams(fields).toString()
}

/** The signed form of a /token/create call. */
export function tokenBody(nowMs = Date.now()) {
  const fields = { grant_type: 'client_credential', appid: APP_ID, timestamp: String(Math.floor(nowMs / 1000)), version: '1.0.0' }
  fields.sign = sign(fields, APP_SECRET)
  return new URLSearchParams(fields).toString()
}
