import { decodeAttach, findReservedCharacter, SIGNING_NAME } from '../../kernel/fields'
import { amountToFen, MAX_FEN, MIN_FEN } from '../../kernel/money'
import { printable } from '../../kernel/printable'
import { isBlank, maskedCanonicalString, SIGN_ALGORITHMS, signAlgorithmOf, verifySign } from '../../kernel/signature'
import type { Fields, Notification, SignAlgorithm } from '../../kernel/types'
import { NotifyRejection } from '../rejection'

export interface VerifyConfig {
  appId: string
  secrets: readonly string[]
  toleranceSec: number
  now: () => number
  /** Attach the masked canonical string to BAD_SIGN rejections. */
  debug: boolean
  /** The algorithms a signature may use (`notifySignTypes`); default any of the three. */
  algorithms?: readonly SignAlgorithm[]
}

/** Fields every notification carries and the package cannot do without. */
const REQUIRED = ['appid', 'outer_trade_no', 'total_amount', 'timestamp', 'sign'] as const
/** Whole seconds: 10 digits until the year 2286. A 13-digit value is milliseconds. */
const SECONDS = /^[0-9]{1,10}$/
const DIGITS = /^[0-9]+$/

function checkTimestamp(raw: string): number {
  if (!SECONDS.test(raw)) {
    const hint = DIGITS.test(raw) && raw.length === 13 ? ' (this looks like milliseconds)' : ''
    throw new NotifyRejection('BAD_TIMESTAMP', `timestamp "${printable(raw, 20)}" is not Unix seconds${hint}`)
  }
  return Number(raw)
}

function checkWindow(timestamp: number, config: VerifyConfig): void {
  const skew = timestamp - Math.floor(config.now() / 1000)
  if (skew > config.toleranceSec || skew < -config.toleranceSec) {
    const direction = skew > 0 ? 'in the future' : 'old'
    throw new NotifyRejection(
      'STALE_TIMESTAMP',
      `timestamp is ${Math.abs(skew)} s ${direction}, more than the ${config.toleranceSec} s tolerance ` +
        '(a replayed notification, or this server\'s clock is wrong: check NTP)',
      { skewSec: skew },
    )
  }
}

/**
 * A blank value is not covered by the signature (the signer drops it), so it reads as empty:
 * otherwise anyone could turn a failure notice into a payment by adding `trade_no=+`.
 */
function signedOrEmpty(value: string | undefined): string {
  return value === undefined || isBlank(value) ? '' : value
}

/**
 * Refuses what the signature cannot pin down, before anything else is read: `&` or `=` in a key
 * or value (the same signed string could then be split into other fields: src/kernel/fields.ts), and a
 * field named `appsecret` (the signer replaces it with the secret, so it is never signed).
 */
export function checkSignable(fields: Fields): void {
  const found = findReservedCharacter(fields)
  if (found) {
    const where = found.in === 'key' ? `key "${printable(found.key, 40)}"` : `the value of "${printable(found.key, 40)}"`
    throw new NotifyRejection('RESERVED_CHARACTER', `${where} contains "&" or "=", which Guanaitong's signed string cannot tell ` +
      'apart from its separators: a re-split of another notification, or not one built from a well-formed pay', { field: printable(found.key, 40) })
  }
  if (Object.prototype.hasOwnProperty.call(fields, SIGNING_NAME)) {
    throw new NotifyRejection('RESERVED_NAME', `a field named "${SIGNING_NAME}" is never covered by the signature`)
  }
}

/**
 * Checks a parsed notification: signable keys and values, required fields, appid, signature,
 * timestamp window, amount. Returns the typed notification or throws a NotifyRejection with the reason.
 */
export function verifyFields(fields: Fields, config: VerifyConfig): Notification {
  checkSignable(fields)
  for (const name of REQUIRED) {
    // A blank value is left out of the signature, so a blank required field would be unsigned.
    if (fields[name] === undefined || isBlank(fields[name])) {
      throw new NotifyRejection('MISSING_FIELD', `required field "${name}" is missing or empty`, { field: name })
    }
  }
  const outerTradeNo = fields.outer_trade_no
  if (fields.appid !== config.appId) {
    throw new NotifyRejection(
      'APPID_MISMATCH',
      `appid "${printable(fields.appid, 40)}" is not the configured application (check the appId option)`,
      { outerTradeNo },
    )
  }
  const timestamp = checkTimestamp(fields.timestamp)
  const accepted = config.algorithms ?? SIGN_ALGORITHMS
  const algorithm = signAlgorithmOf(fields.sign)
  if (algorithm && !accepted.includes(algorithm)) {
    throw new NotifyRejection('BAD_SIGN', `signature is ${algorithm} (${fields.sign.length} hex digits), and notifySignTypes ` +
      `accepts only ${accepted.join(', ')}`, { outerTradeNo, signType: algorithm })
  }
  if (!verifySign(fields, config.secrets, accepted)) {
    const context: Record<string, unknown> = { outerTradeNo }
    if (config.debug) context.canonical = maskedCanonicalString(fields)
    throw new NotifyRejection(
      'BAD_SIGN',
      'signature does not match (wrong appSecret, a proxy that rewrote the body, or a forged request' +
        (config.debug ? '' : '; set debug: true to log the signed string with the secret masked') + ')',
      context,
    )
  }
  checkWindow(timestamp, config)
  const totalFen = amountToFen(fields.total_amount)
  if (totalFen === null || totalFen < MIN_FEN || totalFen > MAX_FEN) {
    throw new NotifyRejection('BAD_AMOUNT', `total_amount "${printable(fields.total_amount, 20)}" is not a valid amount`, {
      outerTradeNo,
    })
  }
  return {
    appId: fields.appid,
    outerTradeNo,
    tradeNo: signedOrEmpty(fields.trade_no),
    buyerOpenId: signedOrEmpty(fields.buyer_open_id),
    totalAmount: fields.total_amount,
    totalFen,
    attach: decodeAttach(signedOrEmpty(fields.attach)),
    timestamp,
    raw: fields,
  }
}
