import { expect } from 'chai'
import { fileURLToPath } from 'node:url'
import { cycles, importGraph, layerProblems } from '../scripts/check-layers'

const src = (path: string) => fileURLToPath(new URL(`../src/${path}`, import.meta.url))

describe('the layers of src/ (scripts/check-layers.ts)', () => {
  it('main has no upward import and no cycle', () => {
    const graph = importGraph()
    expect(graph.size).to.be.greaterThan(50)
    expect(layerProblems(graph)).to.deep.equal([])
    expect(cycles(graph)).to.deep.equal([])
  })

  it('names an upward import and a sibling import', () => {
    const graph = new Map([
      [src('kernel/money.ts'), [src('core/settle/settle.ts')]],
      [src('core/settle/settle.ts'), [src('stores/memory.ts')]],
      [src('stores/memory.ts'), [src('kernel/errors.ts')]],
    ])
    expect(layerProblems(graph)).to.deep.equal([
      'src/kernel/money.ts imports src/core/settle/settle.ts: core is above kernel',
      'src/core/settle/settle.ts imports src/stores/memory.ts: stores is a sibling of core',
    ])
  })

  it('names a cycle within one layer', () => {
    const graph = new Map([
      [src('testing/a.ts'), [src('testing/b.ts')]],
      [src('testing/b.ts'), [src('testing/a.ts')]],
    ])
    expect(cycles(graph)).to.deep.equal([['src/testing/a.ts', 'src/testing/b.ts', 'src/testing/a.ts']])
  })
})
