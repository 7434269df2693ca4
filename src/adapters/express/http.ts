import type { Request, Response } from 'express'
import type { CoreRequest, CoreResponse } from '../../core/http'

/** True when a body parser mounted before us (express.urlencoded, express.json, express.raw) already consumed the stream. */
function alreadyRead(req: Request): boolean {
  return (req as { _body?: boolean })._body === true || req.readableEnded
}

/** The request as the core reads it: the stream when nothing read it yet, else what the parser produced. */
export function fromExpress(req: Request): CoreRequest<Request> {
  const read = alreadyRead(req)
  return {
    method: req.method,
    headers: req.headers,
    rawBody: read ? undefined : req,
    parsedBody: read ? req.body ?? null : undefined,
    request: req,
  }
}

/** Writes the core's answer, unless something else already answered. */
export function sendResponse(res: Response, response: CoreResponse): void {
  if (res.headersSent) return
  res.statusCode = response.status
  for (const [name, value] of Object.entries(response.headers)) res.setHeader(name, value)
  res.setHeader('Content-Length', String(Buffer.byteLength(response.body)))
  res.end(response.body)
}
