/**
 * Fails on an import cycle or an upward import in src/ (run by `npm test`, and on its own with
 * `npx tsx scripts/check-layers.ts`). The layers, bottom up, are drawn in CONTRIBUTING.md
 * ("The layers"). A file may import its own layer and any layer below it, never one above, and
 * never a sibling of the same rank: the core knows no store, client or framework.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, normalize, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

/** Each layer: the top-level entry of src/ it is, and its rank (0 is the floor). */
export const LAYERS: Readonly<Record<string, number>> = {
  kernel: 0, // errors, money, fields and API paths, signature, defaults, option rules, contracts
  observe: 1, // logs, traces, metrics, diagnostics channels
  core: 2, // notify parsing and verification, settlement, pay handling, the ledger
  stores: 2,
  client: 2,
  'guanaitong.ts': 3, // createGuanaitong(): options resolved once, defaults chosen (client, MemoryStore)
  adapters: 4, // Express, node:http, fetch, Fastify, Koa
  testing: 5,
  cli: 6,
  'cli.ts': 7,
  'index.ts': 7,
}

const SRC = fileURLToPath(new URL('../src/', import.meta.url))
const IMPORT = /(?:from\s+|import\s*\(\s*|import\s+)['"](\.{1,2}\/[^'"]+)['"]/g

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) return sourceFiles(path)
    return name.endsWith('.ts') ? [path] : []
  })
}

function resolveImport(from: string, spec: string): string {
  const base = normalize(join(dirname(from), spec))
  for (const candidate of [`${base}.ts`, join(base, 'index.ts'), base]) {
    try {
      if (statSync(candidate).isFile()) return candidate
    } catch {
      // Not this candidate.
    }
  }
  throw new Error(`${relative(SRC, from)} imports ${spec}, which is not a file`)
}

export function layerOf(file: string): string {
  const top = relative(SRC, file).split(/[\\/]/)[0]
  if (!(top in LAYERS)) throw new Error(`src/${top} belongs to no layer: add it to LAYERS in scripts/check-layers.ts`)
  return top
}

/** Every import edge of src/, file to file. */
export function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>()
  for (const file of sourceFiles(SRC)) {
    const text = readFileSync(file, 'utf8')
    // package.json and other files outside src/ are data, not layers.
    const targets = [...text.matchAll(IMPORT)].map((match) => resolveImport(file, match[1]))
    graph.set(file, targets.filter((target) => !relative(SRC, target).startsWith('..')))
  }
  return graph
}

export function layerProblems(graph: Map<string, string[]>): string[] {
  const problems: string[] = []
  for (const [file, imports] of graph) {
    const layer = layerOf(file)
    for (const target of imports) {
      const to = layerOf(target)
      if (to === layer || LAYERS[to] < LAYERS[layer]) continue
      const how = LAYERS[to] === LAYERS[layer] ? 'a sibling of' : 'above'
      problems.push(`src/${relative(SRC, file)} imports src/${relative(SRC, target)}: ${to} is ${how} ${layer}`)
    }
  }
  return problems
}

export function cycles(graph: Map<string, string[]>): string[][] {
  const found: string[][] = []
  const state = new Map<string, 'open' | 'done'>()
  const path: string[] = []
  const visit = (file: string): void => {
    state.set(file, 'open')
    path.push(file)
    for (const next of graph.get(file) ?? []) {
      if (state.get(next) === 'open') found.push([...path.slice(path.indexOf(next)), next].map((f) => `src/${relative(SRC, f)}`))
      else if (!state.has(next)) visit(next)
    }
    path.pop()
    state.set(file, 'done')
  }
  for (const file of graph.keys()) if (!state.has(file)) visit(file)
  return found
}

if (process.argv[1] && fileURLToPath(import.meta.url) === normalize(process.argv[1])) {
  const graph = importGraph()
  const problems = [...layerProblems(graph), ...cycles(graph).map((cycle) => `import cycle: ${cycle.join(' → ')}`)]
  for (const problem of problems) console.error(problem)
  if (problems.length) process.exit(1)
  console.log(`layers: ${graph.size} files, no upward import, no cycle`)
}
