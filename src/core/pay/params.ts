/**
 * The rules for what a pay may carry to Guanaitong, used by the pay route (`buildPayParams`) and
 * by the client (`refuseReservedCharacters`, in src/kernel/pay-rules.ts):
 *
 * - no raw `&` or `=` in any key or value: Guanaitong's signed string could be re-split at them
 *   (src/kernel/fields.ts). `attach` is the exception: the client percent-encodes it (`encodeAttach`)
 *   and the notification's `attach` is decoded, so the shop gets back what it passed;
 * - the pay route passes on only the seed's private parameters and `trade_info`, plus the names a
 *   shop lists in `extraPayParams`. Names are compared exactly: `NOTIFY_URL` or `"notify_url "` is
 *   an unknown name, not a spelling of `notify_url`.
 */
import { ConfigError, ParamError } from '../../kernel/errors'
import { hasReservedCharacter, PAY_FIELDS, type PayField } from '../../kernel/fields'
import type { PayParams, PayRequestFields } from '../../kernel/types'
import { checkPayString, refuseReservedCharacters } from '../../kernel/pay-rules'

/** The parameters the pay route takes from a request body without being told. */
export const PAY_ROUTE_PARAMS: readonly PayField[] = Object.keys(PAY_FIELDS) as PayField[]

/** Options of the pay route that shape what it sends. */
export interface PayParamRules {
  /** Body keys allowed besides the seed's parameters and `trade_info`. */
  extraPayParams?: readonly string[]
  /** Sent as `notify_url`; a `notify_url` from the body is never used. */
  notifyUrl?: string
}

function allowedNames(rules: PayParamRules): ReadonlySet<string> {
  return new Set<string>([...PAY_ROUTE_PARAMS, ...(rules.extraPayParams ?? [])])
}

/** A 400 for the first key that is not allowed (the README's preparePayment must not receive it). */
function refuseUnknownKeys(params: object, allowed: ReadonlySet<string>): void {
  for (const key of Object.keys(params)) {
    if (!allowed.has(key)) {
      throw new ParamError(key, 'is not a pay parameter the route passes on (it takes buyer_open_id, reason, total_amount, ' +
        'outer_trade_no, asset_type, asset_open_id, attach and trade_info); list other names in the extraPayParams option')
    }
  }
}

/**
 * The keys, and the values that are strings, of what the route is about to send. Numbers cannot
 * hold either character; objects (`trade_info`) are checked by the client once serialised.
 */
function refuseReservedInStrings(params: Record<string, unknown>): void {
  const strings: Record<string, string> = {}
  for (const key of Object.keys(params)) strings[key] = typeof params[key] === 'string' ? params[key] as string : ''
  refuseReservedCharacters(strings)
}

/**
 * The pay parameters the route sends, in one call: the allowed keys of the body; then the shop's
 * `prepare` (preparePayment), whose result is held to the same names; `notify_url` from the
 * options only. Throws ParamError (400 naming the field) for an unknown key or a raw `&`/`=`.
 */
export async function buildPayParams(
  body: unknown,
  rules: PayParamRules,
  prepare?: (params: PayRequestFields) => Partial<PayParams> | undefined | Promise<Partial<PayParams> | undefined>,
): Promise<Partial<PayParams>> {
  const allowed = allowedNames(rules)
  let params: Partial<PayParams> = {}
  if (body !== null && typeof body === 'object' && !Array.isArray(body)) {
    refuseUnknownKeys(body, allowed)
    params = { ...(body as Partial<PayParams>) }
  }
  // Where Guanaitong posts the result is the server's decision, never the browser's.
  delete params.notify_url
  if (prepare) {
    // The order number is what a shop looks its order up by: checked before preparePayment sees it.
    const outerTradeNo = checkPayString('outer_trade_no', params.outer_trade_no)
    const prepared: unknown = await prepare({ ...params, outer_trade_no: outerTradeNo })
    // Returning nothing (a JavaScript preparePayment that only checks, or fills in the object it
    // was given) would send the body as the browser wrote it: its buyer, its amount. A 500 instead.
    if (prepared === null || typeof prepared !== 'object') {
      throw new ConfigError(`preparePayment returned ${prepared === null ? 'null' : typeof prepared}, not the pay parameters: ` +
        'return them built from your session and order (see the README, "The secure pay pattern"); nothing was sent')
    }
    params = prepared as Partial<PayParams>
  }
  refuseUnknownKeys(params, allowed)
  if (rules.notifyUrl) params.notify_url = rules.notifyUrl
  refuseReservedInStrings(params as Record<string, unknown>)
  return params
}
