import type { CoreHandler, Guanaitong } from '../guanaitong'
import { ConfigError } from '../kernel/errors'

/** Where an adapter that sees whole URLs (node:http, fetch) finds the routes. */
export interface MountOptions {
  /**
   * The path the routes sit under: with `'/gat'`, notifications go to `/gat/notify` and pays to
   * `/gat/pay` (`notifyPath` and `payPath` below it). Default `''`: `/notify` and `/pay`.
   */
  pathPrefix?: string
}

/** The prefix, checked: empty, or a path starting with `/` and not ending with one. */
export function checkPathPrefix(where: string, options: MountOptions = {}): string {
  const prefix = options.pathPrefix ?? ''
  if (typeof prefix !== 'string' || (prefix !== '' && (!prefix.startsWith('/') || prefix.endsWith('/')))) {
    throw new ConfigError(`${where}: pathPrefix must be '' or a path like '/gat' (starting with /, not ending with one), not ${JSON.stringify(prefix)}`)
  }
  return prefix
}

/** The route for a request to `url` (a path with an optional query), or undefined when it is not one of ours. */
export function routeFor<Req>(gat: Guanaitong<Req>, prefix: string, method: string | undefined, url: string): CoreHandler<Req> | undefined {
  const query = url.indexOf('?')
  const path = query === -1 ? url : url.slice(0, query)
  if (!path.startsWith(prefix)) return undefined
  return gat.route(method ?? '', path.slice(prefix.length))
}
