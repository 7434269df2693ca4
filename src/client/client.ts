import { errorMessage, errorProperty, GatError, ParamError, TOKEN_INVALID_CODE } from '../kernel/errors'
import type { Fields, GatClient, PayParams } from '../kernel/types'
import type { ClientOptions } from './options'
import { apiError, callSigned, type CallConfig } from './call'
import type { GatResponse } from './http'
import { resolveClientOptions } from './options'
import { TOKEN_PATH } from '../kernel/fields'
import { createToken, TokenManager } from './token'
import { PAY_PATH } from '../kernel/fields'
import { payTradeNo, toFields, validatePayParams } from '../kernel/pay-rules'

/**
 * A failure while getting the access token, as a GatError with `sent: false`: the call it was for
 * (`path`, named in the message) was never sent, so it is not ambiguous, whatever happened to the
 * token call. A token cache that failed (Redis down, or waiting on another instance's refresh too
 * long) is kind `token-cache`; a failed `/token/create` keeps its kind, code, status and trace id.
 */
export function tokenFailure(err: unknown, path?: string): GatError {
  const unsent = path === undefined ? '' : ` (getting the access token for ${path})`
  if (err instanceof GatError) {
    return new GatError({
      kind: err.kind, code: err.kind === 'api' && typeof err.code === 'number' ? err.code : null, status: err.status,
      traceId: err.traceId, path: err.path, sent: false, cause: err, msg: `${err.msg}${unsent}`,
    })
  }
  const code = errorProperty(err, 'code')
  return new GatError({
    kind: 'token-cache', code: null, status: 0, path: TOKEN_PATH, sent: false, cause: err,
    msg: `no access token from the token cache (${typeof code === 'string' || typeof code === 'number' ? `${code}: ` : ''}${errorMessage(err)})${unsent}`,
  })
}

/** Creates a Guanaitong API client. Options are checked here and throw ConfigError. */
export function createClient(options: ClientOptions): GatClient {
  const o = resolveClientOptions(options)
  const cfg: CallConfig = {
    appId: o.appId,
    signingSecret: o.signingSecret,
    signType: o.signType,
    baseUrl: o.baseUrl,
    timeoutMs: o.timeoutMs,
    now: o.now,
  }
  const tokens = new TokenManager({ cache: o.tokenCache, create: () => createToken(cfg), now: o.now, logger: o.logger })

  /**
   * One call with the current token. The only retry: an explicit "token invalid" answer, which
   * means Guanaitong refused the call before acting on it, so re-sending cannot do anything twice.
   * It happens once; a second refusal is reported, never looped on. Timeouts and dropped
   * connections are not retried at all: a pay may have gone through.
   */
  async function send(path: string, fields: Fields): Promise<GatResponse> {
    const token = await tokens.get().catch((err: unknown) => { throw tokenFailure(err, path) })
    let res = await callSigned(cfg, path, { ...fields, access_token: token })
    if (res.code === TOKEN_INVALID_CODE) {
      o.logger.warn({
        path, traceId: res.traceId,
      }, '[express-guanaitong] access token rejected by Guanaitong; creating a new one and retrying once')
      // The refused call did nothing; a failure here leaves the retry unsent too.
      const fresh = await tokens.invalidate(token).then(() => tokens.get())
        .catch((err: unknown) => { throw tokenFailure(err, path) })
      res = await callSigned(cfg, path, { ...fields, access_token: fresh })
    }
    if (res.code !== 0) throw apiError(path, res)
    return res
  }

  function normalisePath(path: string): string {
    if (typeof path !== 'string' || path === '') throw new ParamError('path', 'must be a non-empty string like "/platformDealer/employee/pay"')
    return path.startsWith('/') ? path : `/${path}`
  }

  return {
    // A GatError like every other client failure; a failed /token/create is reported as it is.
    getToken: () => tokens.get().catch((err: unknown) => {
      throw err instanceof GatError ? err : tokenFailure(err)
    }),

    async request<T = unknown>(path: string, params: Record<string, unknown> = {}): Promise<T> {
      const res = await send(normalisePath(path), toFields(params))
      return res.data as T
    },

    async pay(params: PayParams): Promise<string> {
      // Validation first: a ParamError must leave nothing sent, not even a token request.
      const fields = validatePayParams(params)
      const res = await send(PAY_PATH, fields)
      return payTradeNo(res.data, res.status, res.traceId)
    },
  }
}
