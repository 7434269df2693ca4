import { GatError } from '../errors'
import type { Fields } from '../types'

/** A well-formed Guanaitong answer. `code` may still be non-zero: judging it is the caller's job. */
export interface GatResponse {
  code: number
  msg: string
  data: unknown
  /** HTTP status, always 200 here (anything else is thrown). */
  status: number
  /** `x-trace-id` response header: what Guanaitong support asks for. */
  traceId?: string
}

/**
 * Failure codes that mean no connection was ever made, so the request cannot have reached
 * Guanaitong and retrying it cannot double-pay. Anything not listed is treated as ambiguous.
 */
const NEVER_SENT = new Set([
  'ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL',
  'UND_ERR_CONNECT_TIMEOUT',
  // TLS handshake failures happen before the request line is written.
  'CERT_HAS_EXPIRED', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'ERR_TLS_CERT_ALTNAME_INVALID',
])

const SNIPPET_LENGTH = 200

/** Enough of a body to recognise an nginx error page or a WAF block in a log line, not a whole page. */
export function snippet(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim()
  if (flat === '') return '(empty body)'
  return flat.length > SNIPPET_LENGTH ? `${flat.slice(0, SNIPPET_LENGTH)}…` : flat
}

function pathOf(url: string): string {
  try {
    return new URL(url).pathname
  } catch {
    return url
  }
}

function errorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' ? code : undefined
}

/**
 * Whether a fetch failure happened before anything was sent. undici wraps the socket error in
 * `cause`; with several addresses (happy eyeballs) the cause is an AggregateError of attempts,
 * all of which must have failed to connect.
 */
export function neverSent(err: unknown): boolean {
  const cause = (err as { cause?: unknown } | null)?.cause
  if (cause instanceof AggregateError && cause.errors.length > 0) {
    return cause.errors.every((e) => NEVER_SENT.has(errorCode(e) ?? ''))
  }
  const code = errorCode(cause) ?? errorCode(err)
  return code !== undefined && NEVER_SENT.has(code)
}

function transportError(path: string, err: unknown, timedOut: boolean, timeoutMs: number, status: number, traceId?: string): GatError {
  if (timedOut) {
    return new GatError({
      kind: 'timeout', code: null, status, traceId, path, ambiguous: true, cause: err,
      msg: `no complete answer within ${timeoutMs} ms`,
    })
  }
  const code = errorCode((err as { cause?: unknown } | null)?.cause) ?? errorCode(err)
  const reason = code ?? (err instanceof Error ? err.message : String(err))
  return new GatError({
    kind: 'network', code: null, status, traceId, path, cause: err,
    // Once headers arrived the request was certainly sent; before that, only a refused connect is safe.
    ambiguous: status !== 0 || !neverSent(err),
    msg: `connection failed: ${reason}`,
  })
}

/** Parses a 200 body into {code,msg,data}; anything else (an HTML page behind a proxy, cut JSON) is invalid-response. */
export function parseAnswer(path: string, text: string, status: number, traceId?: string): GatResponse {
  const invalid = (why: string) =>
    new GatError({ kind: 'invalid-response', code: null, status, traceId, path, msg: `${why}: ${snippet(text)}` })
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    throw invalid('answer is not JSON')
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) throw invalid('answer is not a JSON object')
  const body = json as Record<string, unknown>
  if (typeof body.code !== 'number' || !Number.isInteger(body.code)) throw invalid('answer has no numeric code')
  return {
    code: body.code,
    msg: typeof body.msg === 'string' ? body.msg : '',
    data: body.data ?? null,
    status,
    traceId,
  }
}

/**
 * POSTs `fields` as a form and returns Guanaitong's parsed answer. One timer covers connect,
 * headers and body, so a server that sends headers and then stalls still times out.
 * Never retries: whether a retry is safe depends on the call, which only the caller knows.
 */
export async function postForm(url: string, fields: Fields, timeoutMs: number): Promise<GatResponse> {
  const path = pathOf(url)
  const controller = new AbortController()
  let timedOut = false
  const timer = setTimeout(() => {
    timedOut = true
    controller.abort()
  }, timeoutMs)
  try {
    let res: Response
    try {
      res = await fetch(url, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded;charset=UTF-8',
          accept: 'application/json',
        },
        body: new URLSearchParams(fields).toString(),
        signal: controller.signal,
        // A redirect would turn the POST into a GET and drop the body; the official client treats
        // any non-200 as an error, so do the same rather than follow it.
        redirect: 'manual',
      })
    } catch (err) {
      throw transportError(path, err, timedOut, timeoutMs, 0)
    }
    const traceId = res.headers.get('x-trace-id') ?? undefined
    if (res.status !== 200) {
      // The body only decorates the message; failing to read it must not hide the status.
      const text = await res.text().catch(() => '')
      throw new GatError({ kind: 'http', code: null, status: res.status, traceId, path, msg: `HTTP ${res.status}: ${snippet(text)}` })
    }
    let text: string
    try {
      text = await res.text()
    } catch (err) {
      throw transportError(path, err, timedOut, timeoutMs, res.status, traceId)
    }
    return parseAnswer(path, text, res.status, traceId)
  } finally {
    clearTimeout(timer)
  }
}
