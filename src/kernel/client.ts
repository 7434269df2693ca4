/** The API client's contract (src/client implements it; the pay route calls it) and the pay parameters it takes. */
/** Private parameters of `/platformDealer/employee/pay` (seed), plus any extra ones to pass through. */
export interface PayParams {
  /** The employee's open id, ≤ 32 chars. */
  buyer_open_id: string
  /** Why the employee pays, 1–254 chars. */
  reason: string
  /** Amount in yuan: a decimal string in [0.01, 99999999.99], at most 2 decimals, e.g. "100.00". Numbers are refused (binary floats). */
  total_amount: string
  /** The shop's order number, 2–22 chars, unique per application. */
  outer_trade_no: string
  /** "1" points (积分) or "4" quota (额度). */
  asset_type: '1' | '4' | 1 | 4 | string
  /** The asset the employee chose, ≤ 32 chars. */
  asset_open_id: string
  /** Where Guanaitong posts the result, 1–254 chars. */
  notify_url?: string
  /** Returned as is in the notification, 1–100 chars. */
  attach?: string
  /** Parameters the table does not list (the seed's example sends `trade_info`) pass through. */
  [extra: string]: unknown
}

/**
 * What `preparePayment` receives: the pay request's body fields as the browser sent them. Only
 * `outer_trade_no` has been checked (a 2–22 character string, Guanaitong's limit), so the shop can
 * look its order up with it; every other field is whatever the browser sent, hence `unknown`.
 */
export interface PayRequestFields {
  /** The shop's order number named by the browser, checked to be a 2–22 character string. */
  outer_trade_no: string
  /** Any other body field, unchecked. */
  [field: string]: unknown
}

/** The API client returned by `createClient()`. */
export interface GatClient {
  /** The current access token, creating or refreshing it when due. */
  getToken(): Promise<string>
  /**
   * Validates, signs and sends an employee pay; resolves with Guanaitong's trade number. Rejects
   * with a ParamError (nothing sent) or a GatError whose `sent` and `ambiguous` say whether the
   * employee may have been charged. The pay route treats any other rejection as ambiguous.
   */
  pay(params: PayParams): Promise<string>
  /** Signs and sends any other API call with the same token handling; resolves with `data`. */
  request<T = unknown>(path: string, params?: Record<string, unknown>): Promise<T>
}
