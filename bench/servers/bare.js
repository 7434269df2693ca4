// A framework's own bare notify handler: read the form, answer `success`; the anchor of that
// framework's adapter row. `node bare.js node` (node:http) or `node bare.js fetch` (a fetch
// handler behind node:http, fetch-bridge.js). Express's is baseline.js.
import http from 'node:http'
import { announce } from './control.js'
import { serveFetch } from './fetch-bridge.js'

const framework = process.argv[2]

async function readForm(req) {
  const chunks = []
  for await (const chunk of req) chunks.push(chunk)
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'))
}

const servers = {
  node: () => http.createServer(async (req, res) => {
    if (req.method !== 'POST' || req.url !== '/gat/notify') return res.writeHead(404).end()
    await readForm(req)
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' }).end('success')
  }),
  fetch: () => serveFetch(async (request) => {
    if (request.method !== 'POST' || new URL(request.url).pathname !== '/gat/notify') return new Response(null, { status: 404 })
    new URLSearchParams(await request.text())
    return new Response('success', { headers: { 'content-type': 'text/plain; charset=utf-8' } })
  }),
}

if (!servers[framework]) {
  process.stdout.write(`SKIP no bare ${framework} server\n`)
  process.exit(0)
}
const server = servers[framework]()
server.listen(0, '127.0.0.1', () => announce(server))
