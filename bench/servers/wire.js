// Round trips to a database, counted at the client on the wire, whatever the driver or the store
// does above it: every socket write to the database's port that carries a request awaiting a reply.
//
//   PostgreSQL  a write holding a Query ('Q', one simple-query string however many statements it
//               holds) or a Sync ('S', which ends an extended-protocol query: node-postgres writes its
//               Parse, Bind, Describe, Execute and Sync as separate writes, corked into one send).
//               Requests written before any reply came back on that connection (pipelining) count
//               once, as one multi-statement string does.
//   MySQL       a packet with sequence id 0 (a new command: COM_QUERY, COM_STMT_PREPARE/EXECUTE, …),
//               except the commands that get no reply (COM_QUIT, COM_STMT_CLOSE, COM_STMT_SEND_LONG_DATA);
//               the handshake's packets have sequence ids ≥ 1. Same merging of pipelined requests.
//   Redis       every write holding a command (RESP array). One connection serves every request at
//               once, so writes are not merged by reply: an ioredis pipeline, MULTI…EXEC block or
//               auto-pipelined batch is one write, and counts once.
//
// Each round trip is also counted under a label naming what it carried (`label(text)` for SQL texts,
// command names for Redis), so a report can say where the round trips go. Connecting (startup,
// authentication) is not counted.
import net from 'node:net'

const counters = new Map()
const states = new WeakMap()

function install() {
  const write = net.Socket.prototype.write
  net.Socket.prototype.write = function countedWrite(chunk, ...rest) {
    const counter = counters.get(this.remotePort)
    if (counter && chunk != null) counter.written(this, typeof chunk === 'string' ? Buffer.from(chunk) : chunk)
    return write.call(this, chunk, ...rest)
  }
}

/** The state of one socket: bytes of a message cut by a write, texts since the last round trip. */
function stateOf(socket, protocol) {
  let state = states.get(socket)
  if (!state) {
    state = { carry: null, started: protocol !== 'postgres', texts: [], waiting: false }
    // Runs before the driver's own listener, which may send the next request from it.
    socket.prependListener('data', () => { state.waiting = false })
    states.set(socket, state)
  }
  return state
}

/** PostgreSQL frontend messages: pushes query texts, returns whether one awaits a reply. */
function postgresMessages(state, buf) {
  let awaits = false
  let at = 0
  if (!state.started && buf.length >= 4) {
    // The startup message (or SSLRequest) has no type byte.
    at = buf.readInt32BE(0)
    state.started = true
  }
  while (buf.length - at >= 5) {
    const type = buf[at]
    const end = at + 1 + buf.readInt32BE(at + 1)
    if (end > buf.length) break
    if (type === 0x51) { // Query
      state.texts.push(buf.toString('utf8', at + 5, end - 1))
      awaits = true
    } else if (type === 0x50) { // Parse: statement name, then the query text
      const nameEnd = buf.indexOf(0, at + 5)
      state.texts.push(buf.toString('utf8', nameEnd + 1, buf.indexOf(0, nameEnd + 1)))
    } else if (type === 0x53) awaits = true // Sync
    at = end
  }
  state.carry = at < buf.length ? buf.subarray(at) : null
  return awaits
}

const NO_REPLY = new Set([0x01, 0x18, 0x19])

/** MySQL client packets: pushes query texts, returns whether one awaits a reply. */
function mysqlPackets(state, buf) {
  let awaits = false
  let at = 0
  while (buf.length - at >= 4) {
    const end = at + 4 + buf.readUIntLE(at, 3)
    if (end > buf.length) break
    if (buf[at + 3] === 0 && end > at + 4 && !NO_REPLY.has(buf[at + 4])) {
      const command = buf[at + 4]
      // COM_QUERY and COM_STMT_PREPARE carry the text; COM_STMT_EXECUTE a prepared statement's id.
      state.texts.push(command === 0x03 || command === 0x16 ? buf.toString('utf8', at + 5, end) : `command 0x${command.toString(16)}`)
      awaits = true
    }
    at = end
  }
  state.carry = at < buf.length ? buf.subarray(at) : null
  return awaits
}

/** The names of the RESP commands in one write: `EVALSHA`, `MULTI+EVALSHA+EXEC`. */
function redisCommands(buf) {
  const names = []
  let at = 0
  while (at < buf.length && buf[at] === 0x2a) { // '*'
    let eol = buf.indexOf('\r\n', at)
    let args = Number(buf.toString('latin1', at + 1, eol))
    at = eol + 2
    for (let i = 0; i < args; i++) {
      eol = buf.indexOf('\r\n', at)
      const length = Number(buf.toString('latin1', at + 1, eol))
      if (i === 0) names.push(buf.toString('latin1', eol + 2, eol + 2 + length).toUpperCase())
      at = eol + 2 + length + 2
    }
    if (eol === -1) break
  }
  return names
}

/**
 * Counts the round trips of this process to the database on `port` ('postgres' | 'mysql' | 'redis').
 * `label(text)` names an SQL text for the breakdown. Returns { snapshot(), lastWriteAt }.
 */
export function countRoundTrips(port, protocol, label = (text) => text.slice(0, 40)) {
  if (!counters.size) install()
  const byLabel = {}
  let total = 0
  const counter = {
    lastWriteAt: 0,
    written(socket, chunk) {
      counter.lastWriteAt = performance.now()
      if (protocol === 'redis') {
        const names = redisCommands(chunk)
        if (!names.length) return
        total += 1
        const name = names.join('+')
        byLabel[name] = (byLabel[name] ?? 0) + 1
        return
      }
      const state = stateOf(socket, protocol)
      const buf = state.carry ? Buffer.concat([state.carry, chunk]) : chunk
      const awaits = protocol === 'postgres' ? postgresMessages(state, buf) : mysqlPackets(state, buf)
      if (!awaits) return
      const name = state.texts.map(label).join(' | ') || 'sync'
      state.texts = []
      if (state.waiting) return // pipelined behind a request not answered yet: the same round trip
      state.waiting = true
      total += 1
      byLabel[name] = (byLabel[name] ?? 0) + 1
    },
    snapshot: () => ({ total, byLabel: { ...byLabel } }),
  }
  counters.set(port, counter)
  return counter
}
