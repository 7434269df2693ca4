/**
 * What each Guanaitong field may hold: the pay's private parameters and the notification's
 * fields, in one place. Each entry says what the seed page (docs/gat-protocol.md) states, and
 * marks what is this package's own rule. Checks elsewhere read their limits from here.
 *
 * THE PACKAGE'S OWN RULE for every key and value, both directions: no `&` and no `=`.
 * Guanaitong's canonical string joins raw values with them and escapes nothing, so a value that
 * carries `&k=v` can be read back as other fields under the same signature (the re-split
 * forgery). Guanaitong does not state this rule; its hint is the seed's advice to urlencode
 * `attach` (复杂参数建议urlencode).
 */

/** The characters the signed string uses as separators. */
const RESERVED = /[&=]/

/** True when `text` contains `&` or `=`. */
export function hasReservedCharacter(text: string): boolean {
  return RESERVED.test(text)
}

/** The first key (or key of a value) holding `&` or `=`, and where; null when there is none. */
export function findReservedCharacter(fields: Readonly<Record<string, string>>): { key: string; in: 'key' | 'value' } | null {
  for (const key of Object.keys(fields)) {
    if (RESERVED.test(key)) return { key, in: 'key' }
    if (RESERVED.test(fields[key])) return { key, in: 'value' }
  }
  return null
}

/**
 * THE PACKAGE'S OWN RULE for identifiers (an order number on its way out, the trade number of a
 * pay answer): no whitespace at either end and no control, format or line-separating character.
 * An order number is what a shop's database, its logs, a settlement key and Guanaitong's records
 * are matched by: `"ABC "` would look like `"ABC"` (and be one key to a PAD SPACE collation), a
 * NUL can end a string in C code, and U+202E shows `ABC` reversed to whoever reads it.
 * Guanaitong states nothing about these characters; the seed only gives lengths.
 */
const UNPRINTABLE = /[\p{Cc}\p{Cf}\p{Cs}\p{Zl}\p{Zp}]/u

/** Why `value` is not a printable identifier (the phrase after its name), or undefined when it is. */
export function identifierProblem(value: string): string | undefined {
  if (value !== value.trim()) return 'must not begin or end with whitespace'
  const found = UNPRINTABLE.exec(value)
  if (found) {
    const code = found[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')
    return `must not contain control or formatting characters (found U+${code})`
  }
  return undefined
}

/**
 * Guanaitong's trade number as a pay answer gives it (`data`). The seed's example is 16 digits and
 * it states no limit: 64 characters is the package's bound, far above that and small enough that
 * an answer cannot push a page's worth of text into `onPaid`, a log line or the cashier page.
 */
export const TRADE_NO_MAX = 64

/** A private parameter of `/platformDealer/employee/pay`. */
export interface PayFieldRule {
  /** The seed marks it required (its table); false for the optional ones. */
  required: boolean
  /** Length limits in characters from the seed's table, when it gives them. */
  length?: readonly [min: number, max: number]
  /** Held to `identifierProblem` too (the package's rule, not the seed's). */
  identifier?: true
  /** What the seed says about its content. */
  seed: string
}

/**
 * The seed's table of private parameters, plus `trade_info`, which only the seed's example sends
 * (`trade_info={"thirdTradeNo":"100001"}`): no limits are known for it.
 */
export const PAY_FIELDS = {
  buyer_open_id: { required: true, length: [1, 32], seed: 'the employee\'s open id, string, 32' },
  reason: { required: true, length: [1, 254], seed: 'why the employee pays, string [1,254]' },
  total_amount: { required: true, seed: 'decimal [0.01, 99999999.99] (src/kernel/money.ts)' },
  outer_trade_no: { required: true, length: [2, 22], identifier: true, seed: 'the shop\'s order number, string [2,22]' },
  asset_type: { required: true, seed: '1 points (积分) or 4 quota (额度)' },
  asset_open_id: { required: true, length: [1, 32], seed: 'the asset the employee chose, string, 32' },
  notify_url: { required: false, length: [1, 254], seed: 'where the result is posted, string [1,254]' },
  attach: { required: false, length: [1, 100], seed: 'returned as is, string [1,100]; complex values should be urlencoded' },
  trade_info: { required: false, seed: 'not in the table; the example sends JSON' },
} as const satisfies Record<string, PayFieldRule>

export type PayField = keyof typeof PAY_FIELDS

/** The package's identifier rule for a pay parameter marked `identifier` (`identifierProblem`); undefined for the others. */
export function payFieldProblem(field: PayField, value: string): string | undefined {
  const rule: PayFieldRule = PAY_FIELDS[field]
  return rule.identifier ? identifierProblem(value) : undefined
}

/** The pay parameters the seed gives length limits for: the only ones `payFieldLength` takes. */
export type LengthLimitedPayField = {
  [F in PayField]: (typeof PAY_FIELDS)[F] extends { length: readonly [number, number] } ? F : never
}[PayField]

/** The seed's limits of one pay parameter, as `[min, max]` characters. */
export function payFieldLength(field: LengthLimitedPayField): readonly [number, number] {
  return PAY_FIELDS[field].length
}

/*
 * The notification's fields (seed, section 3) and how the router reads them (src/core/notify/verify.ts):
 * - appid: the application id; must be the configured appId.
 * - outer_trade_no: the shop's order number as sent with the pay (2–22 characters, `PAY_FIELDS`).
 * - buyer_open_id: the employee who paid.
 * - attach: what the pay carried; this client percent-encodes %, & and = (`encodeAttach`), and
 *   `payment.attach` is decoded (`decodeAttach`). Package rule, from the seed's urlencode advice.
 * - total_amount: decimal; read as 0–2 decimals in [0.01, 99999999.99] (src/kernel/money.ts).
 * - trade_no: Guanaitong's trade number: non-empty means paid, empty means the payment failed (seed).
 * - timestamp: seconds since 1970-01-01 (seed); 5 minutes tolerance (seed).
 * - sign: hex digest of the canonical string, lower case: 40 (sha1), 64 (sha256) or 128 (sha512)
 *   digits (docs/gat-protocol.md).
 * Package rules for all of them: a blank value reads as absent (the signer drops it), and no key or
 * value may hold `&` or `=` (above).
 */

/**
 * A name the signing rule itself uses: the signer adds `appsecret=<secret>` and skips any
 * parameter of that name, so a field called `appsecret` would be outside the signature.
 */
export const SIGNING_NAME = 'appsecret'

/**
 * `attach` on the way out: `%`, `&` and `=` percent-encoded (`%25`, `%26`, `%3D`), nothing else,
 * so Chinese text keeps its length under the seed's 100-character limit. The result is valid
 * percent-encoding, as the seed advises for complex values.
 */
export function encodeAttach(value: string): string {
  return value.replace(/[%&=]/g, (c) => (c === '%' ? '%25' : c === '&' ? '%26' : '%3D'))
}

/**
 * `attach` as the shop passed it: the inverse of `encodeAttach`. Other `%xx` sequences (from an
 * attach this client did not send) are left as they are.
 */
export function decodeAttach(value: string): string {
  if (value.indexOf('%') === -1) return value
  return value.replace(/%(25|26|3[dD])/g, (_, hex: string) => (hex === '25' ? '%' : hex === '26' ? '&' : '='))
}

/** Guanaitong's API paths, the client's and the sandbox's alike. */
export const TOKEN_PATH = '/token/create'
export const PAY_PATH = '/platformDealer/employee/pay'

/** A flat map of form fields, every value a string. */
export type Fields = Record<string, string>
