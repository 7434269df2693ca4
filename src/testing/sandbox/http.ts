/**
 * One HTTP request to the sandbox: counted, possibly spoilt by a fault, routed to the token or
 * pay API, answered as the platform does (`{code, msg, data}` with an `x-trace-id` header), and
 * reported as a `request` event.
 */
import { randomBytes } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Fields } from '../../kernel/types'
import { Refusal, SANDBOX_CODES } from './form'
import { readParams } from './body'
import { elapsedMs } from './elapsed'
import type { Fault } from './faults'
import { spoil, writeJson } from './respond'
import type { SandboxRequestEvent, SandboxStats } from './types'

import { PAY_PATH, TOKEN_PATH } from '../../kernel/fields'

export { PAY_PATH, TOKEN_PATH }

/** What request handling needs from the sandbox. The two APIs throw a `Refusal` to refuse a call. */
export interface RequestContext {
  counters: SandboxStats
  takeFault(path: string): Fault | null
  createToken(params: Fields): unknown
  pay(params: Fields): unknown | Promise<unknown>
  answered(event: SandboxRequestEvent): void
}

interface Answer {
  status: number
  body: { code: number; msg: string; data: unknown }
}

export async function handleRequest(context: RequestContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const started = performance.now()
  context.counters.requests += 1
  const method = req.method ?? 'GET'
  const target = new URL(req.url ?? '/', 'http://sandbox.invalid')
  const path = target.pathname
  if (path === TOKEN_PATH) context.counters.tokenCalls += 1
  else if (path === PAY_PATH) context.counters.payCalls += 1
  const fault = context.takeFault(path)
  // The whole request is read first: every fault happens after the client wrote it, and the
  // event reports what it sent.
  const read = await readParams(req, target).then((params) => ({ params, error: null }), (error: unknown) => ({ params: null, error }))
  const finish = (status: number, code: number | null, msg: string | null, traceId: string | null) => {
    context.answered({ method, path, params: read.params, status, code, msg, traceId, fault: fault?.kind ?? null, durationMs: elapsedMs(started) })
  }
  const customTrace = (f: Fault) => Object.entries(f.headers).find(([name]) => name.toLowerCase() === 'x-trace-id')?.[1] ?? null

  if (fault && !fault.processed) {
    const refusalTrace = fault.kind === 'refuse' ? randomBytes(8).toString('hex') : undefined
    spoil(res, fault, refusalTrace)
    finish(fault.status, fault.code, fault.msg, refusalTrace ?? customTrace(fault))
    return
  }

  const traceId = randomBytes(8).toString('hex')
  const answer = await answerCall(context, method, path, read)
  if (fault) {
    spoil(res, fault, traceId, JSON.stringify(answer.body))
    const spoiltTrace = fault.kind === 'custom' ? customTrace(fault) : fault.kind === '5xx' || fault.status === 0 ? null : traceId
    finish(fault.status, fault.code, fault.msg, spoiltTrace)
    return
  }
  writeJson(res, answer.status, JSON.stringify(answer.body), traceId)
  finish(answer.status, answer.body.code, answer.body.msg, traceId)
}

async function answerCall(context: RequestContext, method: string, path: string, read: { params: Fields | null; error: unknown }): Promise<Answer> {
  if (path !== TOKEN_PATH && path !== PAY_PATH) {
    return { status: 404, body: { code: SANDBOX_CODES.NOT_FOUND, msg: `no such API in the sandbox: ${method} ${path}`, data: null } }
  }
  if (method !== 'POST') {
    return { status: 405, body: { code: SANDBOX_CODES.METHOD_NOT_ALLOWED, msg: `${path} takes POST, not ${method}`, data: null } }
  }
  try {
    if (read.params === null) throw read.error
    const data = path === TOKEN_PATH ? context.createToken(read.params) : await context.pay(read.params)
    return { status: 200, body: { code: 0, msg: 'OK', data } }
  } catch (error) {
    // The platform refuses with HTTP 200 and the reason in `code`; anything else is a sandbox bug.
    if (error instanceof Refusal) return { status: 200, body: { code: error.code, msg: error.msg, data: null } }
    throw error
  }
}
