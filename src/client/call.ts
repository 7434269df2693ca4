import { GatError } from '../kernel/errors'
import { traceApi } from '../observe/telemetry'
import { sign } from '../kernel/signature'
import type { Fields, SignAlgorithm } from '../kernel/types'
import { postForm, type GatResponse } from './http'

/** What a signed call needs, already validated (see options.ts). */
export interface CallConfig {
  appId: string
  /** The secret that signs: the first of a rotation list. */
  signingSecret: string
  signType: SignAlgorithm
  /** Without a trailing slash. */
  baseUrl: string
  timeoutMs: number
  now: () => number
}

export const API_VERSION = '1.0.0'

/**
 * Adds the public parameters and the sign. Public ones are written last so a private
 * parameter can never shadow them. The timestamp is taken per call: a retry must carry a
 * fresh one, Guanaitong rejects timestamps more than 5 minutes off.
 */
export function signedFields(cfg: CallConfig, params: Fields): Fields {
  const fields: Fields = {
    ...params,
    appid: cfg.appId,
    timestamp: String(Math.floor(cfg.now() / 1000)),
    version: API_VERSION,
  }
  fields.sign = sign(fields, cfg.signingSecret, cfg.signType)
  return fields
}

/** Signs and posts; the answer's code is not judged here. */
export function callSigned(cfg: CallConfig, path: string, params: Fields): Promise<GatResponse> {
  return traceApi(path, () => postForm(cfg.baseUrl + path, signedFields(cfg, params), cfg.timeoutMs))
}

/** A non-zero code as a GatError, keeping the trace id for Guanaitong support. */
export function apiError(path: string, res: GatResponse): GatError {
  return new GatError({
    kind: 'api', code: res.code, msg: res.msg || '(no msg)', status: res.status, traceId: res.traceId, path,
  })
}
