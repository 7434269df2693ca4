import { Agent as HttpAgent } from 'node:http'
import { Agent as HttpsAgent } from 'node:https'

/**
 * How the client keeps its connections to Guanaitong (one pool per protocol, shared by every
 * client in the process, as `fetch`'s global dispatcher was):
 * - `keepAlive`: a pay reuses a warm socket instead of a TCP (and TLS) handshake each time;
 * - `maxSockets: Infinity`: a call never waits in a local queue, which would eat into its timeout
 *   and turn a request that was never sent into an ambiguous timeout;
 * - `scheduling: 'lifo'`: the most recently used socket is reused first, the one least likely to
 *   have been closed by the server, and the rest can idle out;
 * - `timeout`: an idle socket is closed after 4 s, like undici's default keep-alive timeout, so
 *   a pay is not written on a connection the server (or a NAT) has already dropped. A server's
 *   `Keep-Alive: timeout=N` hint shortens it to N - 1 s (Node applies the hint only below this).
 *   On a socket in use, it only emits an event nobody acts on: `postForm` has its own timer.
 * Idle sockets are unref'd by the agent: they never keep the process alive.
 */
const OPTIONS = { keepAlive: true, maxSockets: Infinity, scheduling: 'lifo', timeout: 4_000 } as const

export const httpAgent = new HttpAgent(OPTIONS)
export const httpsAgent = new HttpsAgent(OPTIONS)
