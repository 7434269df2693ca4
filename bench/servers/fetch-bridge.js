// node:http → a fetch handler, for the fetch rows (bare and adapter alike): the bridge a shop on
// a Node server would write. Both rows pay for it, so their ratio is the package's own cost.
import http from 'node:http'
import { Readable } from 'node:stream'

export function serveFetch(handler) {
  return http.createServer(async (req, res) => {
    const request = new Request(`http://${req.headers.host}${req.url}`, {
      method: req.method,
      headers: req.headers,
      body: req.method === 'GET' || req.method === 'HEAD' ? undefined : Readable.toWeb(req),
      duplex: 'half',
    })
    const response = await handler(request)
    res.writeHead(response.status, Object.fromEntries(response.headers))
    res.end(await response.text())
  })
}
