import { createHash } from 'node:crypto';

/**
 * `/docs`: one self-contained page (no CDN, no bundled UI library) that fetches /openapi.json
 * and renders every route with its parameters, schemas and examples, plus a "try it" form that
 * sends the request with fetch. The DOM is built with textContent only, so nothing from the
 * document is ever parsed as HTML. The script is pinned by its hash in the CSP.
 */

const STYLE = `
body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#1d1d1f;background:#fafafa}
header{background:#2d1b4e;color:#fff;padding:14px 24px;display:flex;gap:16px;align-items:center;flex-wrap:wrap}
header h1{font-size:18px;margin:0}header input{width:420px;max-width:90vw;padding:4px 6px;font:inherit}
main{padding:8px 24px 48px;max-width:1100px}h2{margin:24px 0 8px}h2::first-letter{text-transform:uppercase}
details{background:#fff;border:1px solid #ddd;border-radius:6px;margin:6px 0}summary{cursor:pointer;padding:8px 10px}
.m{display:inline-block;min-width:58px;font-weight:700;font-family:monospace}.GET{color:#0a7d32}.POST{color:#b25c00}.DELETE{color:#b00020}
.p{font-family:monospace;font-weight:600}.auth{float:right;color:#666;font-size:12px}.body{padding:4px 14px 14px}
pre{background:#f3f1f7;padding:8px;overflow:auto;max-height:360px;margin:4px 0}table{border-collapse:collapse}
td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}textarea{width:100%;min-height:90px;font-family:monospace}
button{padding:4px 14px;margin-top:6px}header a{color:#cdb8ff}label{display:block;margin:4px 0}label input{margin-left:6px}
`;

const SCRIPT = `
const el = (tag, props = {}, ...children) => {
  const node = Object.assign(document.createElement(tag), props);
  for (const child of children) node.append(child);
  return node;
};
const json = (value) => JSON.stringify(value, null, 2);
const keyInput = document.getElementById('key');
const AUTH_LABEL = { none: 'no auth', agent: 'agent key', agent_optional: 'agent key optional', admin: 'admin key' };

function authOf(op) {
  const sec = op.security || [];
  if (sec.length === 0) return 'none';
  if (sec.some((s) => Object.keys(s).length === 0)) return 'agent_optional';
  return sec.some((s) => 'adminKey' in s) ? 'admin' : 'agent';
}

async function send(method, path, op, fields, bodyArea, out) {
  let url = path;
  const query = new URLSearchParams();
  for (const param of op.parameters || []) {
    const value = fields[param.in + ':' + param.name]?.value;
    if (!value) continue;
    if (param.in === 'path') url = url.replace('{' + param.name + '}', encodeURIComponent(value));
    if (param.in === 'query') query.set(param.name, value);
  }
  if ([...query].length > 0) url += '?' + query;
  const headers = {};
  if (keyInput.value.trim() && authOf(op) !== 'none') headers.authorization = 'Bearer ' + keyInput.value.trim();
  const idem = fields['header:Idempotency-Key']?.value;
  if (idem) headers['idempotency-key'] = idem;
  const init = { method, headers, signal: AbortSignal.timeout(10000) };
  if (bodyArea) { headers['content-type'] = 'application/json'; init.body = bodyArea.value; }
  out.textContent = method + ' ' + url + ' …';
  try {
    const res = await fetch(url, init);
    out.textContent = res.status + ' ' + res.statusText + '\\n';
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let text = '';
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
      out.textContent = res.status + ' ' + res.statusText + '\\n' + text;
    }
    try { out.textContent = res.status + ' ' + res.statusText + '\\n' + json(JSON.parse(text)); } catch {}
  } catch (error) {
    out.textContent += '\\n' + (error.name === 'TimeoutError' ? '(stopped after 10 s)' : String(error));
  }
}

function operation(method, path, op) {
  const auth = authOf(op);
  const body = el('div', { className: 'body' });
  if (op.description) body.append(el('p', { textContent: op.description }));
  const fields = {};
  const params = op.parameters || [];
  if (params.length > 0) {
    const table = el('table', {}, el('tr', {}, el('th', { textContent: 'parameter' }), el('th', { textContent: 'in' }), el('th', { textContent: 'schema' }), el('th', { textContent: 'try' })));
    for (const param of params) {
      const input = el('input', { placeholder: param.required ? 'required' : 'optional' });
      fields[param.in + ':' + param.name] = input;
      table.append(el('tr', {}, el('td', { textContent: param.name }), el('td', { textContent: param.in }), el('td', {}, el('code', { textContent: JSON.stringify(param.schema) })), el('td', {}, input)));
    }
    body.append(table);
  }
  let bodyArea;
  const content = op.requestBody?.content?.['application/json'];
  if (content) {
    body.append(el('h4', { textContent: 'Request body' }), el('pre', { textContent: json(content.schema) }));
    bodyArea = el('textarea', { value: content.example ? json(content.example) : '{}' });
  }
  body.append(el('h4', { textContent: 'Responses' }));
  for (const [status, response] of Object.entries(op.responses || {})) {
    const media = Object.values(response.content || {})[0];
    const item = el('details', {}, el('summary', { textContent: status + ' ' + response.description }));
    if (media?.example !== undefined) item.append(el('pre', { textContent: typeof media.example === 'string' ? media.example : json(media.example) }));
    if (media?.schema) item.append(el('pre', { textContent: json(media.schema) }));
    body.append(item);
  }
  const out = el('pre', { textContent: '' });
  const button = el('button', { textContent: 'Send', type: 'button' });
  button.onclick = () => send(method.toUpperCase(), path, op, fields, bodyArea, out);
  body.append(el('h4', { textContent: 'Try it' }));
  if (bodyArea) body.append(bodyArea);
  body.append(button, out);
  return el('details', {},
    el('summary', {}, el('span', { className: 'm ' + method.toUpperCase(), textContent: method.toUpperCase() }), el('span', { className: 'p', textContent: path }), ' — ' + op.summary, el('span', { className: 'auth', textContent: AUTH_LABEL[auth] })),
    body);
}

async function render() {
  const root = document.querySelector('main');
  const spec = await (await fetch('/openapi.json')).json();
  document.getElementById('title').textContent = spec.info.title + ' ' + spec.info.version;
  root.append(el('p', { textContent: spec.info.description }));
  const byTag = new Map((spec.tags || []).map((tag) => [tag.name, []]));
  for (const [path, methods] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      const tag = op.tags?.[0] || 'other';
      if (!byTag.has(tag)) byTag.set(tag, []);
      byTag.get(tag).push(operation(method, path, op));
    }
  }
  for (const [tag, ops] of byTag) if (ops.length > 0) root.append(el('h2', { textContent: tag }), ...ops);
}
render().catch((error) => { document.querySelector('main').textContent = 'Could not load /openapi.json: ' + error; });
`;

export const DOCS_PAGE_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Agent marketplace API</title><style>${STYLE}</style></head>
<body><header><h1 id="title">Agent marketplace API</h1>
<label>API key <input id="key" placeholder="sk_live_… (or the admin key for /admin)" autocomplete="off"></label>
<a href="/openapi.json">openapi.json</a></header>
<main></main><script>${SCRIPT}</script></body></html>
`;

const scriptHash = createHash('sha256').update(SCRIPT).digest('base64');
const styleHash = createHash('sha256').update(STYLE).digest('base64');

/** Only this page's own script and style run; it may talk to this origin only. */
export const DOCS_PAGE_CSP = `default-src 'none'; script-src 'sha256-${scriptHash}'; style-src 'sha256-${styleHash}'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'`;
