/**
 * Request parsing and parameter checks of the sandbox (see sandbox.ts). Internal: the error
 * codes are the sandbox's own choice, listed in `SANDBOX_CODES`.
 */
import { payFieldLength, payFieldProblem, type LengthLimitedPayField } from '../../kernel/fields'
import { normalizeAmount } from '../../kernel/money'
import { parseForm as parseStrictForm } from '../../core/notify/parse-form'
import { NotifyRejection } from '../../core/rejection'
import type { Fields } from '../../kernel/types'

/** Far above any real call's parameter count; only a runaway body reaches it. */
const MAX_PARAMETERS = 1000

/**
 * Codes the sandbox answers for failures Guanaitong does not document a code for.
 * THESE ARE THE SANDBOX'S CHOICE, not Guanaitong's: the real platform's codes for a bad sign,
 * a stale timestamp or a malformed parameter are not published. They sit in a 99990xxxx range
 * that does not look like Guanaitong's codes (e.g. 1000210004, 1001220005), so a shop's code
 * never mistakes one for a documented condition. Each answer's `msg` names the field at fault.
 * Documented Guanaitong codes are used as such: 1000210004 (token invalid/expired) and
 * 1001220005 (外部交易号已存在).
 */
export const SANDBOX_CODES = Object.freeze({
  /** `sign` missing, or not the signature of the parameters under the app secret. */
  BAD_SIGN: 999900001,
  /** `timestamp` missing, not whole Unix seconds, or more than `toleranceSec` away from now. */
  BAD_TIMESTAMP: 999900002,
  /** A parameter is missing, too long/short, or malformed; `msg` starts with its name. */
  INVALID_PARAM: 999900003,
  /** `appid` is not the sandbox's application. */
  UNKNOWN_APPID: 999900004,
  /** The body could not be read: wrong content type or charset, bad percent-escape, too large. */
  BAD_REQUEST: 999900005,
  /**
   * The pay was refused (`setPayOutcome('failed')`, `failNextPays`, `failPaysWithAsset`), like an
   * asset without balance. Guanaitong's own codes for this are not documented.
   */
  PAY_FAILED: 999900006,
  /** No such API path in the sandbox (answered with HTTP 404). */
  NOT_FOUND: 999900404,
  /** The API exists but only takes POST (answered with HTTP 405). */
  METHOD_NOT_ALLOWED: 999900405,
})

export type SandboxCode = (typeof SANDBOX_CODES)[keyof typeof SANDBOX_CODES]

/** A refusal: the JSON answer `{code, msg, data: null}`. */
export class Refusal {
  constructor(
    readonly code: number,
    readonly msg: string,
  ) {}
}

/**
 * Parses `a=1&b=2` with the package's own strict form parser (the one that reads notifications):
 * malformed escapes, invalid UTF-8, nested and repeated keys are refused, since each makes the
 * signed values ambiguous.
 */
export function parseForm(bytes: Buffer, where: 'query string' | 'body'): Fields {
  if (bytes.length === 0) return Object.create(null)
  try {
    return parseStrictForm(bytes, 'utf8', MAX_PARAMETERS)
  } catch (err) {
    if (!(err instanceof NotifyRejection)) throw err
    const code = err.reason === 'DUPLICATE_KEY' ? SANDBOX_CODES.INVALID_PARAM : SANDBOX_CODES.BAD_REQUEST
    throw new Refusal(code, `the ${where}: ${err.detail}`)
  }
}

/**
 * Query string and body together, as one parameter set (the official clients send the public
 * parameters in the query string, the seed's example sends everything in the body). A key in both
 * places must carry the same value.
 */
export function mergeParams(query: Fields, body: Fields): Fields {
  const out: Fields = {}
  for (const key of Object.keys(query)) out[key] = query[key]
  for (const key of Object.keys(body)) {
    if (Object.prototype.hasOwnProperty.call(out, key) && out[key] !== body[key]) {
      throw new Refusal(SANDBOX_CODES.INVALID_PARAM, `${key} is sent in both the query string and the body with different values`)
    }
    out[key] = body[key]
  }
  return out
}

/** Optional parameters are absent when missing or empty (Guanaitong's signer ignores empty values too). */
function present(params: Fields, key: string): boolean {
  return params[key] !== undefined && params[key] !== ''
}

function required(params: Fields, key: string): string {
  if (!present(params, key)) throw new Refusal(SANDBOX_CODES.INVALID_PARAM, `${key} is required`)
  return params[key]
}

/**
 * The seed's limits (src/kernel/fields.ts), counted as Java counts a String: UTF-16 code units, which is
 * what `.length` counts. An identifier (`outer_trade_no`) is also held to the package's printable
 * rule: THE SANDBOX'S CHOICE, so that it refuses what the client refuses; Guanaitong's own answer
 * to a NUL or a U+202E in an order number is not known.
 */
function length(key: LengthLimitedPayField, value: string): void {
  const [min, max] = payFieldLength(key)
  if (value.length < min || value.length > max) {
    const rule = min <= 1 ? `must be at most ${max} characters` : `must be ${min} to ${max} characters`
    throw new Refusal(SANDBOX_CODES.INVALID_PARAM, `${key} ${rule} (got ${value.length})`)
  }
  const problem = payFieldProblem(key, value)
  if (problem) throw new Refusal(SANDBOX_CODES.INVALID_PARAM, `${key} ${problem}`)
}

/** The private parameters of an employee pay once checked, amount normalised. */
export interface CheckedPay {
  buyerOpenId: string
  reason: string
  totalAmount: string
  totalFen: number
  outerTradeNo: string
  assetType: '1' | '4'
  assetOpenId: string
  notifyUrl: string | null
  attach: string | null
}

/** Checks the private parameters against the seed's table, in the table's order. */
export function checkPayParams(params: Fields): CheckedPay {
  const buyerOpenId = required(params, 'buyer_open_id')
  length('buyer_open_id', buyerOpenId)
  const reason = required(params, 'reason')
  length('reason', reason)
  const rawAmount = required(params, 'total_amount')
  const amount = normalizeAmount(rawAmount)
  if (!amount.ok) throw new Refusal(SANDBOX_CODES.INVALID_PARAM, `total_amount ${amount.rule}; got ${JSON.stringify(rawAmount)}`)
  const outerTradeNo = required(params, 'outer_trade_no')
  length('outer_trade_no', outerTradeNo)
  const assetType = required(params, 'asset_type')
  if (assetType !== '1' && assetType !== '4') {
    throw new Refusal(SANDBOX_CODES.INVALID_PARAM, `asset_type must be "1" (points) or "4" (quota); got ${JSON.stringify(assetType)}`)
  }
  const assetOpenId = required(params, 'asset_open_id')
  length('asset_open_id', assetOpenId)
  let notifyUrl: string | null = null
  if (present(params, 'notify_url')) {
    notifyUrl = params.notify_url
    length('notify_url', notifyUrl)
    let url: URL | null = null
    try {
      url = new URL(notifyUrl)
    } catch {
      url = null
    }
    // Not in the seed: the sandbox refuses what it could not post to, rather than fail later.
    if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
      throw new Refusal(SANDBOX_CODES.INVALID_PARAM, `notify_url must be an absolute http(s) URL; got ${JSON.stringify(notifyUrl)}`)
    }
  }
  let attach: string | null = null
  if (present(params, 'attach')) {
    attach = params.attach
    length('attach', attach)
  }
  return {
    buyerOpenId,
    reason,
    totalAmount: amount.amount,
    totalFen: amount.fen,
    outerTradeNo,
    assetType,
    assetOpenId,
    notifyUrl,
    attach,
  }
}
