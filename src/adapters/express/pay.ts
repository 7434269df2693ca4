import type { Request, RequestHandler } from 'express'
import { createPayHandler } from '../../core/pay/handler'
import type { PayRouteOptions } from './types'
import { checkOptions, PAY_ROUTE_RULES } from '../../kernel/validate'
import { fromExpress, sendResponse } from './http'

/**
 * `POST /pay` on its own, for a shop that mounts the routes itself: the core's pay handler
 * (src/core/pay/handler.ts) behind Express.
 */
export function payRoute<Tx = unknown>(options: PayRouteOptions<Tx>): RequestHandler {
  checkOptions('payRoute()', options, PAY_ROUTE_RULES, '{ client: createClient({ appId, appSecret }), notifyUrl }')
  const handle = createPayHandler<Request>(options as PayRouteOptions<unknown>)
  return function pay(req, res, next): void {
    handle(fromExpress(req)).then((response) => sendResponse(res, response), next)
  }
}
