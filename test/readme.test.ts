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
 * Any other info string on a ts/js block fails, so nothing is skipped silently. `file=NAME` may be
 * added to a checked block: it is written as NAME, so later blocks import it (`./app.js`).
 * A server block runs against a sandbox (GAT_APPID, GAT_APPSECRET, GAT_BASE_URL set to it); when
 * it prints a `try: <command>` line, that command must exit 0 and every pay it makes must be
 * notified and answered `success`. README's install block (the one running `npm pack`) is run by
 * its own test below.
 */
import { expect } from 'chai'
import { spawn } from 'node:child_process'
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { basename } from 'node:path'
import { createSandbox, type Sandbox } from '../src/testing/sandbox'
import { packed, root, scratch } from './packed'
import { typecheck } from './typecheck'

interface Block {
  /** e.g. README.md:67 */
  where: string
  lang: 'ts' | 'js'
  flags: string[]
  /** The file the block is written as (`file=NAME`), else one named after where it is. */
  file?: string
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
      const words = open[2].split(/\s+/).filter(Boolean)
      const file = words.find((w) => w.startsWith('file='))?.slice('file='.length)
      blocks.push({
        where: `${doc}:${i + 1}`, lang: open[1] as Block['lang'], flags: words.filter((w) => !w.startsWith('file=')), file,
        code: lines.slice(i + 1, end).join('\n'),
      })
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

/** Runs a shell command to its end. */
function shell(command: string, cwd: string): Promise<Ran> {
  const child = spawn('sh', ['-c', command], { cwd, stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString() })
  return new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal, output })))
}

interface Served {
  /** The answer to an empty notification. */
  answer?: { status: number; body: string }
  /** The server's `try:` command, run. */
  tried?: Ran & { command: string }
}

/**
 * Runs a file; for a server, waits for its URL, runs its `try:` command if `tries`, sends one
 * empty notification, then stops it.
 */
async function execute(file: string, lang: Block['lang'], server: { sandbox: Sandbox; tries: boolean } | undefined, timeoutMs: number): Promise<Ran & Served> {
  const port = server ? await freePort() : 0
  const args = lang === 'ts' ? ['--import', 'tsx', file] : [file]
  const sandboxEnv = server ? { GAT_APPID: server.sandbox.appId, GAT_APPSECRET: server.sandbox.appSecret, GAT_BASE_URL: server.sandbox.url } : {}
  const child = spawn(process.execPath, args, {
    cwd: join(scratch, 'readme'),
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...ENV, ...sandboxEnv, ...(server ? { PORT: String(port) } : {}) },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  let answer: { status: number; body: string } | undefined
  let tried: Served['tried']
  const exited = new Promise<Ran>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal, output })))
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
  let listening: (() => void) | undefined
  const url = `http://localhost:${port}`
  const seen = new Promise<void>((resolve) => { listening = resolve })
  const tryLine = /^try: (.+)$/m
  const collect = (chunk: Buffer) => {
    output += chunk.toString()
    if (server && output.includes(url) && (!server.tries || tryLine.test(output))) listening?.()
  }
  child.stdout.on('data', collect)
  child.stderr.on('data', collect)
  if (server) {
    const first = await Promise.race([seen.then(() => 'listening' as const), exited.then(() => 'exited' as const)])
    if (first === 'listening') {
      const command = tryLine.exec(output)?.[1]
      if (command) {
        tried = { command, ...(await shell(command, join(scratch, 'readme'))) }
        // The notifications its pays caused, delivered while the server still runs; the test checks their answers.
        await server!.sandbox.waitIdle().catch((err: Error) => { tried!.output += `\nthe sandbox never went idle: ${err.message}` })
      }
      const res = await fetch(`http://127.0.0.1:${port}/gat/notify`, {
        method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: '',
      })
      answer = { status: res.status, body: await res.text() }
      child.kill('SIGTERM')
    }
  }
  const ran = await exited
  clearTimeout(timer)
  return { ...ran, output, answer, tried }
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens. */
function slug(heading: string): string {
  return heading.trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-')
}

function anchorsOf(doc: string): Set<string> {
  const text = readFileSync(join(root, doc), 'utf8').replace(/^```[\s\S]*?^```/gm, '')
  return new Set([...text.matchAll(/^#{1,6}\s+(.+)$/gm)].map((m) => slug(m[1])))
}

describe('README and docs links', () => {
  const pages = ['README.md', 'CONTRIBUTING.md', 'examples/README.md', ...DOCS.filter((d) => d.startsWith('docs/'))]

  it('every relative link points at a file that exists, and at a heading that exists', () => {
    const broken: string[] = []
    for (const page of pages) {
      const text = readFileSync(join(root, page), 'utf8').replace(/^```[\s\S]*?^```/gm, '')
      for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^[a-z]+:/.test(target)) continue
        const [file, anchor] = target.split('#')
        const linked = file ? join(page, '..', file) : page
        if (!existsSync(join(root, linked))) {
          broken.push(`${page}: ${target} (no such file)`)
          continue
        }
        const anchors = anchor ? anchorsOf(linked) : new Set<string>()
        if (anchor && !anchors.has(anchor)) broken.push(`${page}: ${target} (no such heading)`)
      }
    }
    expect(broken).to.deep.equal([])
  })

  it('every README heading named in the package\'s messages exists', () => {
    const headings = new Set([...readFileSync(join(root, 'README.md'), 'utf8').matchAll(/^#{1,6}\s+(.+)$/gm)].map((m) => m[1].trim()))
    const sources = readdirSync(join(root, 'src'), { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts'))
    const named = sources.flatMap((f) => [...readFileSync(join(root, 'src', f), 'utf8').matchAll(/README, "([^"]+)"/g)].map((m) => ({ f, heading: m[1] })))
    expect(named.length, 'messages that name a README heading').to.be.greaterThan(0)
    expect(named.filter((n) => !headings.has(n.heading)).map((n) => `src/${n.f}: "${n.heading}"`)).to.deep.equal([])
  })
})

describe('README and docs: no snippet shows the insecure pattern', () => {
  it('no preparePayment in a code block spreads the body it is given', () => {
    const spreading = blocks.filter((b) => {
      const param = /preparePayment\s*[:=(]\s*(?:async\s*)?\(\s*\w+\s*,\s*(\w+)/.exec(b.code)?.[1]
      return param !== undefined && new RegExp(`\\.\\.\\.\\s*${param}\\b`).test(b.code)
    })
    expect(blocks.filter((b) => /preparePayment\s*[:=(]/.test(b.code)).length, 'blocks with a preparePayment').to.be.greaterThan(2)
    expect(spreading.map((b) => b.where)).to.deep.equal([])
  })
})

describe('README install, until the package is on npm', function () {
  this.timeout(300_000)

  it('clones this package\'s repository, and its npm install line installs the tarball npm pack writes', async () => {
    const readme = readFileSync(join(root, 'README.md'), 'utf8')
    const block = [...readme.matchAll(/^```sh\n([\s\S]*?)^```/gm)].map((m) => m[1]).find((b) => b.includes('npm pack'))
    expect(block, 'the README\'s install block').to.be.a('string')
    const lines = block!.split('\n').map((line) => line.replace(/\s+#.*$/, '').trim()).filter(Boolean)
    const repository = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).repository.url.replace(/^git\+/, '')
    expect(lines.slice(0, 2)).to.deep.equal([`git clone ${repository}`, 'cd express-guanaitong && npm install && npm pack'])
    // packed() runs `npm pack` in a fresh copy of the repository: the file the second line writes.
    const { tarball } = packed()
    const home = join(scratch, 'install')
    rmSync(home, { recursive: true, force: true })
    mkdirSync(join(home, 'express-guanaitong'), { recursive: true })
    mkdirSync(join(home, 'my-app'))
    copyFileSync(tarball, join(home, 'express-guanaitong', basename(tarball)))
    writeFileSync(join(home, 'my-app', 'package.json'), JSON.stringify({ name: 'my-app', private: true, type: 'module' }))
    const installed = await shell(lines[2], join(home, 'express-guanaitong'))
    expect(installed.code, `${lines[2]}\n${installed.output}`).to.equal(0)
    const loaded = await shell(`node -e "const g = require('express-guanaitong'); console.log(typeof g, typeof g.createClient)" && ` +
      `node -e "import('express-guanaitong/testing').then((t) => console.log(typeof t.createSandbox))"`, join(home, 'my-app'))
    expect(loaded.output.trim().split('\n'), loaded.output).to.deep.equal(['function function', 'function'])
  })
})

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
    // The README itself stays mostly runnable; docs/ blocks that need packages this check does not
    // install (OTel SDK, pino, node-redis cluster) are fragments until the check installs them.
    const inReadme = (list: typeof blocks) => list.filter((b) => b.where.startsWith('README.md')).length
    expect(inReadme(checked), 'README blocks checked').to.be.greaterThan(inReadme(fragments))
  })

  for (const block of checked) {
    const server = is(block, 'server')
    const run = server || is(block, 'run')
    const tries = server && /\btry: /.test(block.code)
    const what = [block.lang === 'ts' ? 'type-checks' : '', run ? (server ? 'serves POST /gat/notify' : 'runs to exit 0') : '',
      tries ? 'its try: command pays' : ''].filter(Boolean).join(', ')
    it(`${block.where} (\`\`\`${[block.lang, ...block.flags].join(' ')}) ${what}`, async () => {
      const name = block.file ?? `${block.where.replace(/[^\w]+/g, '-')}.${block.lang === 'ts' ? 'ts' : 'cjs'}`
      const file = join(dir, name)
      writeFileSync(file, `${block.code}\n`)
      if (block.lang === 'ts') {
        const errors = typecheck([file], {
          strict: true, target: 'es2022', lib: ['es2022'], types: ['node'], module: 'nodenext', moduleResolution: 'nodenext',
        }, installed)
        expect(errors, `${block.where} does not compile:\n${errors.join('\n')}`).to.deep.equal([])
      }
      if (!run) return
      const sandbox = server ? createSandbox({ timeScale: 0.001 }) : undefined
      await sandbox?.start()
      try {
        const ran = await execute(file, block.lang, sandbox && { sandbox, tries }, 60_000)
        if (server) {
          expect(ran.answer, `${block.where} never printed http://localhost:<PORT>; output:\n${ran.output}`).to.not.equal(undefined)
          expect(ran.answer, ran.output).to.deep.equal({ status: 400, body: 'fail' })
        }
        if (tries) {
          expect(ran.tried, `${block.where} never printed its try: line; output:\n${ran.output}`).to.not.equal(undefined)
          expect({ code: ran.tried!.code }, `${ran.tried!.command}\n${ran.tried!.output}\nserver:\n${ran.output}`).to.deep.equal({ code: 0 })
          expect(sandbox!.payments.length, 'pays made by the try: command').to.be.greaterThan(0)
          expect(sandbox!.payments.map((p) => p.attempts.at(-1)?.body), ran.output).to.deep.equal(sandbox!.payments.map(() => 'success'))
        }
        if (!server) {
          expect({ code: ran.code, signal: ran.signal }, `${block.where} failed; output:\n${ran.output}`).to.deep.equal({ code: 0, signal: null })
        }
      } finally {
        await sandbox?.close()
      }
    })
  }
})
