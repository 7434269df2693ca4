/** Writing the sandbox's answers: JSON with a trace id, and the spoilt answers of faults. */
import type { ServerResponse } from 'node:http'
import type { Fault } from './faults'

/** What a gateway in front of the platform answers; the application never saw the request. */
const BAD_GATEWAY_PAGE = (status: number) =>
  `<html>\r\n<head><title>${status} Bad Gateway</title></head>\r\n<body>\r\n<center><h1>${status} Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n`

/** JSON cut off mid-object, as when a proxy truncates the answer. */
const BROKEN_JSON = '{"code":0,"msg":"OK","data":'

/** `traceId` is left out when the answer did not come from the application. */
export function writeJson(res: ServerResponse, status: number, text: string, traceId: string | undefined): void {
  const headers: Record<string, string | number> = {
    'content-type': 'application/json;charset=UTF-8',
    'content-length': Buffer.byteLength(text),
  }
  if (traceId) headers['x-trace-id'] = traceId
  res.writeHead(status, headers)
  res.end(text)
}

/** The start of an answer the application gave: what a client has read when the connection breaks mid-answer. */
const UNPROCESSED_ANSWER = '{"code":0,"msg":"OK","data":"20200702200000000000"}'

/**
 * Answers with the fault instead of the real answer (`answer`, the JSON text the application
 * gave when the request was processed). A garbled, refused or half-sent answer carries the trace
 * id when the request was processed, as the application did answer; a 5xx page never does, and a
 * custom answer only when the test wrote one in its headers.
 */
export function spoil(res: ServerResponse, fault: Fault, traceId?: string, answer?: string): void {
  if (fault.midAnswer) {
    const text = answer ?? UNPROCESSED_ANSWER
    const headers: Record<string, string | number> = {
      'content-type': 'application/json;charset=UTF-8',
      'content-length': Buffer.byteLength(text),
    }
    if (traceId) headers['x-trace-id'] = traceId
    res.writeHead(200, headers)
    res.write(text.slice(0, Math.floor(text.length / 2)))
    // Closed after what was written is flushed (destroying at once could discard it). A hang
    // leaves it there until the client gives up or close() ends it.
    if (fault.kind === 'reset') res.socket?.end()
    return
  }
  // A hang answers nothing: the connection stays open until the client gives up or close() ends it.
  if (fault.kind === 'hang') return
  if (fault.kind === 'reset') {
    res.socket?.destroy()
    return
  }
  if (fault.kind === '5xx') {
    const page = BAD_GATEWAY_PAGE(fault.status)
    res.writeHead(fault.status, { 'content-type': 'text/html', 'content-length': Buffer.byteLength(page) })
    res.end(page)
    return
  }
  if (fault.kind === 'custom') {
    res.writeHead(fault.status, { ...fault.headers, 'content-length': Buffer.byteLength(fault.body) })
    res.end(fault.body)
    return
  }
  if (fault.kind === 'refuse') {
    writeJson(res, 200, JSON.stringify({ code: fault.code, msg: fault.msg, data: null }), traceId)
    return
  }
  if (fault.kind === 'data') {
    writeJson(res, 200, JSON.stringify({ code: 0, msg: 'OK', data: fault.data }), traceId)
    return
  }
  writeJson(res, 200, BROKEN_JSON, traceId)
}
