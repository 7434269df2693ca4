import { GatError, ParamError } from './errors'
import { encodeAttach, findReservedCharacter, hasReservedCharacter, identifierProblem, PAY_FIELDS, PAY_PATH, payFieldLength, payFieldProblem, TRADE_NO_MAX, type LengthLimitedPayField } from './fields'
import { normalizeAmount } from './money'
import { printable } from './printable'
import { isBlank } from './signature'
import type { Fields } from './fields'

/**
 * Parameters the client sets itself. A caller-supplied one would either be overwritten
 * silently or, worse, change what is signed, so it is refused instead.
 */
export const PUBLIC_PARAMS: ReadonlySet<string> = new Set([
  'appid', 'timestamp', 'version', 'access_token', 'sign', 'grant_type', 'appsecret',
])

/** The private parameters of /platformDealer/employee/pay that have their own checks below. */
const CHECKED_FIELDS: ReadonlySet<string> = new Set([
  'buyer_open_id', 'reason', 'total_amount', 'outer_trade_no', 'asset_type', 'asset_open_id', 'notify_url', 'attach',
] satisfies Array<keyof typeof PAY_FIELDS>)

/**
 * A lone UTF-16 surrogate cannot be encoded as UTF-8: the form encoder would turn it into U+FFFD
 * while the signature was computed over the original, so Guanaitong would see a bad sign.
 */
const LONE_SURROGATE = /\p{Cs}/u

/** Guanaitong's limits are in characters, so an emoji counts once, not as two UTF-16 units. */
export function charLength(value: string): number {
  let n = 0
  for (const _ of value) n++
  return n
}

function describe(value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`
}

function lengthRule(min: number, max: number): string {
  return min <= 1 ? `must be at most ${max} characters` : `must be ${min}–${max} characters`
}

/**
 * A string parameter within [min, max] characters. Blank counts as missing: the signer drops
 * blank values, so a blank required field would reach Guanaitong unsigned and be rejected there
 * with a less helpful message.
 */
export function checkString(field: string, value: unknown, min: number, max: number): string {
  if (value === undefined || value === null) throw new ParamError(field, 'is required')
  if (typeof value !== 'string') throw new ParamError(field, `must be a string, got ${describe(value)}`)
  if (value.trim() === '') throw new ParamError(field, 'must not be empty or blank')
  if (LONE_SURROGATE.test(value)) throw new ParamError(field, 'contains an unpaired surrogate (invalid Unicode)')
  const length = charLength(value)
  if (length < min || length > max) throw new ParamError(field, `${lengthRule(min, max)} (got ${length})`)
  return value
}

/** Like checkString, but undefined/null means "not sent". An empty string is refused: the seed's minimum is 1. */
export function checkOptionalString(field: string, value: unknown, min: number, max: number): string | undefined {
  if (value === undefined || value === null) return undefined
  return checkString(field, value, min, max)
}

/** `1` (points, 积分) or `4` (quota, 额度); numbers are accepted because asset lists often carry the type as a number. */
export function checkAssetType(value: unknown): string {
  if (value === '1' || value === 1) return '1'
  if (value === '4' || value === 4) return '4'
  if (value === undefined || value === null) throw new ParamError('asset_type', 'is required')
  throw new ParamError('asset_type', 'must be "1" (points) or "4" (quota)')
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false
  const proto = Object.getPrototypeOf(value)
  return proto === Object.prototype || proto === null
}

/**
 * The wire form of a parameter outside the seed's table. JSON for structures because that is
 * what the seed's own example does (`trade_info={"thirdTradeNo":"100001"}`). Returns undefined
 * for "do not send".
 */
export function toFieldValue(field: string, value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined
  switch (typeof value) {
    case 'string':
      if (LONE_SURROGATE.test(value)) throw new ParamError(field, 'contains an unpaired surrogate (invalid Unicode)')
      return value
    case 'number':
      // NaN/Infinity would go out as the words "NaN"/"Infinity": never what the caller meant.
      if (!Number.isFinite(value)) throw new ParamError(field, 'must be a finite number')
      return String(value)
    case 'bigint':
    case 'boolean':
      return String(value)
    case 'object':
      if (Array.isArray(value) || isPlainObject(value)) {
        try {
          return JSON.stringify(value)
        } catch {
          throw new ParamError(field, 'cannot be serialised as JSON (circular structure?)')
        }
      }
      break
  }
  // Dates, Buffers, class instances, functions: their string forms differ by runtime and are rarely intended.
  throw new ParamError(field, `must be a string, number, boolean, plain object or array, got ${describe(value)}`)
}

/**
 * Flattens parameters into form fields. An empty string is not sent: the newer official SDK
 * never sends empty values, and the signer drops them, so sending one would only invite a
 * signature disagreement.
 */
export function toFields(params: unknown, skip: ReadonlySet<string> = new Set()): Fields {
  if (!isPlainObject(params)) throw new ParamError('params', `must be a plain object, got ${describe(params)}`)
  const out: Fields = {}
  for (const key of Object.keys(params)) {
    if (skip.has(key)) continue
    // `__proto__` as an own key (e.g. from JSON.parse) would set the prototype of `out`.
    if (key === '' || key === '__proto__') throw new ParamError(key || '(empty name)', 'is not a valid parameter name')
    if (PUBLIC_PARAMS.has(key)) throw new ParamError(key, 'is a public parameter set by the client; do not pass it')
    const value = toFieldValue(key, params[key])
    if (value !== undefined && value !== '') out[key] = value
  }
  return out
}

/**
 * A pay parameter against the seed's length limits and, for an identifier (`outer_trade_no`), the
 * package's printable rule (src/kernel/fields.ts); a ParamError naming it otherwise.
 */
export function checkPayString(field: LengthLimitedPayField, value: unknown): string {
  const [min, max] = payFieldLength(field)
  const checked = checkString(field, value, min, max)
  const problem = payFieldProblem(field, checked)
  if (problem) throw new ParamError(field, problem)
  return checked
}

/**
 * `attach` percent-encoded (`%`, `&`, `=`; src/kernel/fields.ts), so it cannot re-split the signed
 * string; the seed's 100 characters apply to what is sent.
 */
function checkAttach(value: unknown): string | undefined {
  const [min, max] = payFieldLength('attach')
  const attach = checkOptionalString('attach', value, min, Infinity)
  if (attach === undefined) return undefined
  const encoded = encodeAttach(attach)
  const length = charLength(encoded)
  if (length > max) {
    throw new ParamError('attach', `must be at most ${max} characters once "%", "&" and "=" are percent-encoded (got ${length})`)
  }
  return encoded
}

/**
 * Checks every private parameter of /platformDealer/employee/pay against the seed's limits and
 * the signing rule (no raw `&` or `=`: src/core/pay/params.ts), so a bad call fails here with the
 * field's name instead of as an opaque upstream code, and nothing is sent. Returns the form
 * fields to sign and send, `attach` percent-encoded.
 */
export function validatePayParams(params: unknown): Fields {
  if (!isPlainObject(params)) throw new ParamError('params', `must be a plain object, got ${describe(params)}`)
  const out: Fields = {
    buyer_open_id: checkPayString('buyer_open_id', params.buyer_open_id),
    reason: checkPayString('reason', params.reason),
    total_amount: checkAmount(params.total_amount),
    outer_trade_no: checkPayString('outer_trade_no', params.outer_trade_no),
    asset_type: checkAssetType(params.asset_type),
    asset_open_id: checkPayString('asset_open_id', params.asset_open_id),
  }
  const [urlMin, urlMax] = payFieldLength('notify_url')
  const notifyUrl = checkOptionalString('notify_url', params.notify_url, urlMin, urlMax)
  if (notifyUrl !== undefined) out.notify_url = notifyUrl
  const attach = checkAttach(params.attach)
  if (attach !== undefined) out.attach = attach
  const fields = { ...out, ...toFields(params, CHECKED_FIELDS) }
  refuseReservedCharacters(fields)
  return fields
}

function checkAmount(value: unknown): string {
  if (value === undefined || value === null || value === '') throw new ParamError('total_amount', 'is required')
  const checked = normalizeAmount(value)
  if (!checked.ok) throw new ParamError('total_amount', checked.rule)
  return checked.amount
}


const RESERVED_RULE = 'must not contain "&" or "=": Guanaitong\'s signature joins fields with them, so they would let the fields be re-split'

/** Refuses `&` and `=` in every key, and in every value but `attach` (which the client encodes). */
export function refuseReservedCharacters(fields: Readonly<Record<string, string>>): void {
  const { attach: _attach, ...rest } = fields
  const found = findReservedCharacter(rest)
  if (found) throw new ParamError(found.key, found.in === 'key' ? `is not a valid parameter name: a name ${RESERVED_RULE}` : RESERVED_RULE)
}

/**
 * The trade number of a pay answered code 0: a non-blank string of at most `TRADE_NO_MAX`
 * printable characters without `&` or `=` (src/kernel/fields.ts), the only kind a notification could
 * carry too. Anything else is an `invalid-response` GatError, ambiguous: code 0 says the pay was
 * accepted, only its trade number cannot be trusted, so the order is neither settled nor refused.
 * The pay route holds a custom client's answer to the same rule.
 */
export function payTradeNo(data: unknown, status: number, traceId?: string): string {
  const problem = typeof data !== 'string' ? 'is not a string'
    : isBlank(data) ? 'is empty or blank'
      : charLength(data) > TRADE_NO_MAX ? `is over ${TRADE_NO_MAX} characters (got ${charLength(data)})`
        : hasReservedCharacter(data) ? 'contains "&" or "="'
          : identifierProblem(data)
  if (problem === undefined) return data as string
  const shown = typeof data === 'string' ? `"${printable(data, 40)}"` : printable(JSON.stringify(data) ?? String(data), 40)
  throw new GatError({
    kind: 'invalid-response', code: null, status, traceId, path: PAY_PATH,
    msg: `pay answered code 0, but its trade number ${problem} (data: ${shown})`,
  })
}
