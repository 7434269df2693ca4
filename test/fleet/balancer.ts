/**
 * A test-only HTTP load balancer: every request goes to a RANDOM live backend.
 *
 * Failure policy (what nginx does by default for a POST, `proxy_next_upstream error timeout`
 * without `non_idempotent`):
 * - The connection to the chosen backend is REFUSED (ECONNREFUSED): the request never reached an
 *   application, so it is safe to send it elsewhere. The backend is marked dead and removed, and
 *   the request is tried on another live backend. With none left: 502.
 * - Anything after the request may have reached the backend (connection reset, socket hang up,
 *   the process killed while it worked): the request is NOT re-sent (a POST may have had its
 *   effect). The sender gets `502 bad gateway`, which Guanaitong (the sandbox) reads as a failed
 *   delivery and retries later — on a random, possibly different, instance.
 * - The backend fails after its answer began: the client connection is destroyed (no answer).
 *
 * The test removes a backend it killed with `remove()`; one that dies unannounced is found out
 * by the first refused connection.
 */
import { Agent, createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

export interface Backend {
  name: string
  port: number
  agent: Agent
  /** Requests forwarded to it (answered or not). */
  forwarded: number
}

export interface BalancerStats {
  requests: number
  /** Requests re-sent to another backend after a refused connection. */
  refusedRetries: number
  /** 502s answered (no live backend, or the backend failed after the request reached it). */
  badGateway: number
}

/** Hop-by-hop headers are not forwarded (RFC 9110 §7.6.1); the body is re-sent with a length. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'host', 'content-length'])

export class Balancer {
  private readonly backends = new Map<string, Backend>()
  private server: Server | null = null
  readonly stats: BalancerStats = { requests: 0, refusedRetries: 0, badGateway: 0 }
  /** Backends removed because they refused a connection. */
  readonly foundDead: string[] = []

  add(name: string, port: number): void {
    // Sockets idle at most 30 s: well under the backends' keepAliveTimeout (60 s), so a request is
    // never written on a socket the backend is just closing.
    const agent = new Agent({ keepAlive: true, keepAliveMsecs: 1000, timeout: 30_000, maxFreeSockets: 256 })
    this.backends.set(name, { name, port, agent, forwarded: 0 })
  }

  /** Takes a backend out of rotation (it was killed or is being stopped) and drops its sockets. */
  remove(name: string): void {
    const backend = this.backends.get(name)
    if (!backend) return
    this.backends.delete(name)
    backend.agent.destroy()
  }

  live(): Backend[] {
    return [...this.backends.values()]
  }

  backend(name: string): Backend | undefined {
    return this.backends.get(name)
  }

  async start(): Promise<void> {
    const server = createServer((req, res) => void this.handle(req, res))
    server.keepAliveTimeout = 60_000
    server.headersTimeout = 61_000
    server.requestTimeout = 0
    this.server = server
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  }

  get url(): string {
    const address = this.server?.address() as AddressInfo | null
    if (!address) throw new Error('balancer not started')
    return `http://127.0.0.1:${address.port}`
  }

  async close(): Promise<void> {
    for (const name of [...this.backends.keys()]) this.remove(name)
    const server = this.server
    if (!server) return
    this.server = null
    const closed = new Promise<void>((resolve) => server.close(() => resolve()))
    server.closeAllConnections()
    await closed
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.stats.requests += 1
    let body: Buffer
    try {
      const chunks: Buffer[] = []
      for await (const chunk of req) chunks.push(chunk as Buffer)
      body = Buffer.concat(chunks)
    } catch {
      res.destroy()
      return
    }
    const headers: Record<string, string | string[]> = {}
    for (const [key, value] of Object.entries(req.headers)) {
      if (value !== undefined && !HOP_BY_HOP.has(key)) headers[key] = value
    }
    headers['content-length'] = String(body.length)
    const tried = new Set<string>()
    for (;;) {
      const candidates = this.live().filter((b) => !tried.has(b.name))
      if (candidates.length === 0) return this.badGateway(res, 'no live backend')
      const backend = candidates[Math.floor(Math.random() * candidates.length)]
      tried.add(backend.name)
      backend.forwarded += 1
      const outcome = await this.forward(backend, req, res, headers, body)
      if (outcome !== 'refused') return
      // Never reached the application: safe to try another one.
      this.stats.refusedRetries += 1
      if (this.backends.get(backend.name) === backend) {
        this.foundDead.push(backend.name)
        this.remove(backend.name)
      }
    }
  }

  /** Sends one request; 'refused' when the connection was refused, else 'done' once answered (or failed). */
  private forward(backend: Backend, req: IncomingMessage, res: ServerResponse, headers: Record<string, string | string[]>, body: Buffer): Promise<'refused' | 'done'> {
    return new Promise((resolve) => {
      let answered = false
      const upstream = httpRequest({
        host: '127.0.0.1',
        port: backend.port,
        method: req.method,
        path: req.url,
        headers: { ...headers, host: `127.0.0.1:${backend.port}` },
        agent: backend.agent,
      }, (upRes) => {
        answered = true
        const out: Record<string, string | string[]> = {}
        for (const [key, value] of Object.entries(upRes.headers)) {
          if (value !== undefined && key !== 'connection' && key !== 'keep-alive') out[key] = value
        }
        res.writeHead(upRes.statusCode ?? 502, out)
        upRes.pipe(res)
        upRes.on('error', () => res.destroy())
        upRes.on('aborted', () => res.destroy())
        res.on('close', () => resolve('done'))
      })
      upstream.on('error', (err: NodeJS.ErrnoException) => {
        if (answered) {
          res.destroy()
          resolve('done')
        } else if (err.code === 'ECONNREFUSED') {
          resolve('refused')
        } else {
          this.badGateway(res, `${backend.name}: ${err.code ?? err.message}`)
          resolve('done')
        }
      })
      upstream.end(body)
    })
  }

  private badGateway(res: ServerResponse, why: string): void {
    this.stats.badGateway += 1
    if (res.headersSent) {
      res.destroy()
      return
    }
    res.writeHead(502, { 'content-type': 'text/plain; charset=utf-8', 'x-balancer-error': why.replace(/[^\x20-\x7e]/g, '?') })
    res.end('bad gateway')
  }
}
