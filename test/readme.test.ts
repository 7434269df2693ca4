/**
 * The documentation's code blocks, checked against the packed package (see test/packed.ts) the
 * way a new user would use them: strict TypeScript, ESM (NodeNext). The info string after the
 * language says what a block is (CONTRIBUTING.md, "The README checks"):
 *
 *   ```ts                    a complete module: type-checked
 *   ```ts run                type-checked, then run with Node (tsx); must exit 0
 *   ```ts server             type-checked, then run with PORT set; must print http://localhost:<PORT>
 *   ```js commonjs server    and answer POST /gat/notify with `fail` for an empty body; then stopped
 *   ```js commonjs run       run as a .cjs file; must exit 0
 *   ```ts fragment           a piece of a program: not checked
 *
 * Any other info string on a ts/js block fails, so nothing is skipped silently.
 */
import { expect } from 'chai'
import { spawn } from 'node:child_process'
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { packed, root, scratch } from './packed'
import { typecheck } from './typecheck'

interface Block {
  /** e.g. README.md:67 */
  where: string
  lang: 'ts' | 'js'
  flags: string[]
  code: string
}

const LANGS = new Set(['ts', 'js'])
const FLAGS: Record<Block['lang'], string[][]> = {
  ts: [[], ['run'], ['server'], ['fragment']],
  js: [['commonjs', 'run'], ['commonjs', 'server'], ['fragment']],
}
const DOCS = ['README.md', ...readdirSync(join(root, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)]
const ENV = { GAT_APPID: '20110698', GAT_APPSECRET: 'readme-secret' }

function blocksOf(doc: string): Block[] {
  const lines = readFileSync(join(root, doc), 'utf8').split('\n')
  const blocks: Block[] = []
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\S*)\s*(.*)$/.exec(lines[i])
    if (!open) continue
    const end = lines.findIndex((line, j) => j > i && /^```\s*$/.test(line))
    if (end < 0) throw new Error(`${doc}:${i + 1}: code block never closed`)
    if (LANGS.has(open[1])) {
      blocks.push({ where: `${doc}:${i + 1}`, lang: open[1] as Block['lang'], flags: open[2].split(/\s+/).filter(Boolean), code: lines.slice(i + 1, end).join('\n') })
    }
    i = end
  }
  return blocks
}

const blocks = DOCS.flatMap(blocksOf)
const is = (block: Block, ...flags: string[]) => flags.every((f) => block.flags.includes(f))
const fragments = blocks.filter((b) => is(b, 'fragment'))
const checked = blocks.filter((b) => !is(b, 'fragment'))

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    }).on('error', reject)
  })
}

interface Ran {
  code: number | null
  signal: NodeJS.Signals | null
  output: string
}

/** Runs a file; for a server, waits for its URL, sends one notification, then stops it. */
async function execute(file: string, lang: Block['lang'], server: boolean, timeoutMs: number): Promise<Ran & { answer?: { status: number; body: string } }> {
  const port = server ? await freePort() : 0
  const args = lang === 'ts' ? ['--import', 'tsx', file] : [file]
  const child = spawn(process.execPath, args, {
    cwd: join(scratch, 'readme'),
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...ENV, ...(server ? { PORT: String(port) } : {}) },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  let answer: { status: number; body: string } | undefined
  const exited = new Promise<Ran>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal, output })))
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
  let listening: (() => void) | undefined
  const url = `http://localhost:${port}`
  const seen = new Promise<void>((resolve) => { listening = resolve })
  const collect = (chunk: Buffer) => {
    output += chunk.toString()
    if (server && output.includes(url)) listening?.()
  }
  child.stdout.on('data', collect)
  child.stderr.on('data', collect)
  if (server) {
    const first = await Promise.race([seen.then(() => 'listening' as const), exited.then(() => 'exited' as const)])
    if (first === 'listening') {
      const res = await fetch(`http://127.0.0.1:${port}/gat/notify`, {
        method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: '',
      })
      answer = { status: res.status, body: await res.text() }
      child.kill('SIGTERM')
    }
  }
  const ran = await exited
  clearTimeout(timer)
  return { ...ran, output, answer }
}

describe('README and docs code blocks, against the packed package', function () {
  this.timeout(300_000)
  let installed: string
  const dir = join(scratch, 'readme')

  before(() => {
    installed = packed().installed
    mkdirSync(dir, { recursive: true })
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: 'module' }))
  })

  it(`has only known info strings; fragments, not checked: ${fragments.map((b) => b.where).join(', ') || 'none'}`, () => {
    const unknown = blocks.filter((b) => !FLAGS[b.lang].some((set) => set.length === b.flags.length && set.every((f) => b.flags.includes(f))))
    expect(unknown.map((b) => `${b.where}: \`\`\`${b.lang} ${b.flags.join(' ')}`),
      'complete each block, or mark it `fragment` on purpose (CONTRIBUTING.md, "The README checks")').to.deep.equal([])
    expect(checked.length, 'blocks checked').to.be.greaterThan(fragments.length)
  })

  for (const block of checked) {
    const server = is(block, 'server')
    const run = server || is(block, 'run')
    const what = [block.lang === 'ts' ? 'type-checks' : '', run ? (server ? 'serves POST /gat/notify' : 'runs to exit 0') : ''].filter(Boolean).join(', ')
    it(`${block.where} (\`\`\`${[block.lang, ...block.flags].join(' ')}) ${what}`, async () => {
      const name = block.where.replace(/[^\w]+/g, '-')
      const file = join(dir, `${name}.${block.lang === 'ts' ? 'ts' : 'cjs'}`)
      writeFileSync(file, `${block.code}\n`)
      if (block.lang === 'ts') {
        const errors = typecheck([file], {
          strict: true, target: 'es2022', lib: ['es2022'], types: ['node'], module: 'nodenext', moduleResolution: 'nodenext',
        }, installed)
        expect(errors, `${block.where} does not compile:\n${errors.join('\n')}`).to.deep.equal([])
      }
      if (!run) return
      const ran = await execute(file, block.lang, server, 60_000)
      if (server) {
        expect(ran.answer, `${block.where} never printed http://localhost:<PORT>; output:\n${ran.output}`).to.not.equal(undefined)
        expect(ran.answer, ran.output).to.deep.equal({ status: 400, body: 'fail' })
      } else {
        expect({ code: ran.code, signal: ran.signal }, `${block.where} failed; output:\n${ran.output}`).to.deep.equal({ code: 0, signal: null })
      }
    })
  }
})
