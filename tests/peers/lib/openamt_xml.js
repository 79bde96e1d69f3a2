'use strict'
/*
 * Reading a WS-MAN reply the way Open AMT's MPS and RPS read it.
 *
 * Both parse replies with xml2js configured as {ignoreAttrs: true, explicitArray: false, tagNameProcessors:
 * [stripPrefix], valueProcessors: [parseNumbers (keeping leading-zero InstanceID/ElementName strings),
 * parseBooleans]} and then walk plain objects: `reply.Envelope.Body.PullResponse.Items.CIM_Chip`.  xml2js is
 * not among the pinned peer packages, so this module reproduces that configuration's output shape (facts of
 * xml2js's documented behaviour, written here from scratch):
 *   - an element with only text becomes its processed text; an empty element becomes '' (attributes ignored);
 *   - an element with child elements becomes an object keyed by local name (prefix stripped); a repeated
 *     child becomes an array, a single one stays a scalar or object;
 *   - whitespace between child elements is dropped; other mixed text lands in '_'.
 * The parse is strict like sax in strict mode: mismatched tags, bad entities, DOCTYPE or junk after the root
 * are errors.  Namespace prefixes are also checked (xml2js does not, but an undeclared prefix is a broken
 * reply for any namespace-aware consumer): they are reported in `namespaceErrors`, not thrown.
 */

const XML_NS = 'http://www.w3.org/XML/1998/namespace'
const ENTITIES = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" }
const NAME = /^[A-Za-z_][\w.\-]*(:[A-Za-z_][\w.\-]*)?$/

class XmlError extends Error {}

function decodeText (raw, where) {
  return raw.replace(/&([^;]{0,10});?/g, (match, ref) => {
    if (!match.endsWith(';')) throw new XmlError(`unterminated entity at ${where}`)
    if (ref in ENTITIES) return ENTITIES[ref]
    const num = /^#x([0-9a-fA-F]+)$/.exec(ref) || /^#([0-9]+)$/.exec(ref)
    if (num) return String.fromCodePoint(parseInt(num[1], ref[1] === 'x' ? 16 : 10))
    throw new XmlError(`unknown entity &${ref}; at ${where}`)
  })
}

function parseAttributes (text, where) {
  const attrs = []
  const re = /\s*([^\s=]+)\s*=\s*("([^"]*)"|'([^']*)')/y
  let pos = 0
  while (pos < text.length) {
    if (/^\s*$/.test(text.slice(pos))) break
    re.lastIndex = pos
    const m = re.exec(text)
    if (!m) throw new XmlError(`malformed attributes ${JSON.stringify(text.slice(pos, pos + 40))} at ${where}`)
    if (!NAME.test(m[1])) throw new XmlError(`bad attribute name ${m[1]} at ${where}`)
    attrs.push([m[1], decodeText(m[3] !== undefined ? m[3] : m[4], where)])
    pos = re.lastIndex
  }
  const names = attrs.map(([n]) => n)
  if (new Set(names).size !== names.length) throw new XmlError(`duplicate attribute at ${where}`)
  return attrs
}

/** Parse into a small DOM: {name, local, ns, attrs, children, text}.  Throws XmlError when not well formed. */
function parseDom (xml) {
  let pos = 0
  if (xml.charCodeAt(0) === 0xfeff) pos = 1
  const namespaceErrors = []
  const stack = []
  let root = null
  const scopes = [{ xml: XML_NS }]
  const lookup = (prefix) => {
    for (let i = scopes.length - 1; i >= 0; i--) if (prefix in scopes[i]) return scopes[i][prefix]
    return undefined
  }
  while (pos < xml.length) {
    const lt = xml.indexOf('<', pos)
    const text = xml.slice(pos, lt < 0 ? xml.length : lt)
    if (text.length) {
      if (!stack.length) {
        if (!/^\s*$/.test(text)) throw new XmlError(`text outside the root element at ${pos}`)
      } else {
        stack[stack.length - 1].text += decodeText(text, pos)
      }
    }
    if (lt < 0) break
    pos = lt
    if (xml.startsWith('<?', pos)) {
      const end = xml.indexOf('?>', pos)
      if (end < 0) throw new XmlError('unterminated processing instruction')
      pos = end + 2
    } else if (xml.startsWith('<!--', pos)) {
      const end = xml.indexOf('-->', pos)
      if (end < 0) throw new XmlError('unterminated comment')
      pos = end + 3
    } else if (xml.startsWith('<![CDATA[', pos)) {
      const end = xml.indexOf(']]>', pos)
      if (end < 0 || !stack.length) throw new XmlError('misplaced CDATA')
      stack[stack.length - 1].text += xml.slice(pos + 9, end)
      pos = end + 3
    } else if (xml.startsWith('<!', pos)) {
      throw new XmlError(`DOCTYPE or declaration not allowed at ${pos}`)
    } else if (xml.startsWith('</', pos)) {
      const end = xml.indexOf('>', pos)
      if (end < 0) throw new XmlError('unterminated end tag')
      const name = xml.slice(pos + 2, end).trim()
      const open = stack.pop()
      if (!open || open.name !== name) throw new XmlError(`end tag </${name}> does not match <${open && open.name}>`)
      scopes.pop()
      if (!stack.length) root = open
      pos = end + 1
    } else {
      const end = xml.indexOf('>', pos)
      if (end < 0) throw new XmlError('unterminated start tag')
      let inner = xml.slice(pos + 1, end)
      const selfClosing = inner.endsWith('/')
      if (selfClosing) inner = inner.slice(0, -1)
      const nameEnd = inner.search(/\s|$/)
      const name = inner.slice(0, nameEnd)
      if (!NAME.test(name)) throw new XmlError(`bad element name ${JSON.stringify(name)} at ${pos}`)
      if (!stack.length && root) throw new XmlError('a second root element')
      const attrs = parseAttributes(inner.slice(nameEnd), pos)
      const scope = {}
      for (const [attr, value] of attrs) {
        if (attr === 'xmlns') scope[''] = value
        else if (attr.startsWith('xmlns:')) scope[attr.slice(6)] = value
      }
      scopes.push(scope)
      const colon = name.indexOf(':')
      const prefix = colon < 0 ? '' : name.slice(0, colon)
      const ns = lookup(prefix)
      if (prefix && ns === undefined) namespaceErrors.push(`undeclared prefix ${prefix}: on <${name}>`)
      for (const [attr] of attrs) {
        const c = attr.indexOf(':')
        if (c > 0 && attr.slice(0, c) !== 'xmlns' && lookup(attr.slice(0, c)) === undefined) {
          namespaceErrors.push(`undeclared prefix ${attr.slice(0, c)}: on attribute ${attr} of <${name}>`)
        }
      }
      const node = { name, local: name.slice(colon + 1), ns, attrs, children: [], text: '' }
      if (stack.length) stack[stack.length - 1].children.push(node)
      if (selfClosing) {
        scopes.pop()
        if (!stack.length) root = node
      } else {
        stack.push(node)
      }
      pos = end + 1
    }
  }
  if (stack.length) throw new XmlError(`unclosed <${stack[stack.length - 1].name}>`)
  if (!root) throw new XmlError('no root element')
  return { root, namespaceErrors }
}

function processValue (text, local) {
  if (/^(?:true|false)$/i.test(text)) return text.toLowerCase() === 'true'
  if ((local === 'ElementName' || local === 'InstanceID') && text.length > 1 && text[0] === '0') return text
  if (!isNaN(text)) return Number(text) % 1 === 0 ? parseInt(text, 10) : parseFloat(text)
  return text
}

function toObject (node) {
  const obj = {}
  for (const child of node.children) {
    const value = toObject(child)
    if (!(child.local in obj)) obj[child.local] = value
    else if (Array.isArray(obj[child.local])) obj[child.local].push(value)
    else obj[child.local] = [obj[child.local], value]
  }
  if (/^\s*$/.test(node.text)) return Object.keys(obj).length ? obj : node.text
  const text = processValue(node.text, node.local)
  if (!Object.keys(obj).length) return text
  obj._ = text
  return obj
}

/** `{object, dom, namespaceErrors}`: object as Open AMT's consumers see it, e.g. object.Envelope.Body. */
function parseLikeOpenAmt (xml) {
  const { root, namespaceErrors } = parseDom(xml)
  return { object: { [root.local]: toObject(root) }, dom: root, namespaceErrors }
}

/** A value as a list, the way consumers normalise xml2js's single-or-array children. */
function asList (value) {
  if (value === undefined || value === '') return []
  return Array.isArray(value) ? value : [value]
}

module.exports = { parseLikeOpenAmt, parseDom, asList, XmlError }
