// Runs in the page (page.evaluate): elements sticking out of the viewport, content an element
// clips, and the sandbox badge's text taking more than one line. Plain JS so the DOM types stay
// out of the Node test program. Returns a list of problems, empty when the layout fits.
() => {
  const width = document.documentElement.clientWidth
  const problems = []
  if (document.documentElement.scrollWidth > width) problems.push(`page scrolls sideways: ${document.documentElement.scrollWidth} > ${width}`)
  for (const el of document.body.querySelectorAll('*')) {
    const box = el.getBoundingClientRect()
    if (box.width === 0 && box.height === 0) continue
    const name = `${el.tagName.toLowerCase()}${el.id ? `#${el.id}` : ''}${el.className ? `.${String(el.className).trim().replace(/\s+/g, '.')}` : ''}`
    if (box.left < -0.5 || box.right > width + 0.5) problems.push(`${name} spans ${Math.round(box.left)}–${Math.round(box.right)} of ${width} px`)
    if (el.scrollWidth > el.clientWidth + 1 && getComputedStyle(el).overflowX !== 'visible') problems.push(`${name} clips its content`)
  }
  const badge = document.getElementById('mode')
  const range = document.createRange()
  range.selectNodeContents(badge)
  const lines = new Set(Array.from(range.getClientRects(), (r) => Math.round(r.top))).size
  if (lines !== 1) problems.push(`the badge "${badge.textContent}" takes ${lines} lines`)
  return problems
}
