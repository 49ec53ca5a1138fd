// What both pages share: element lookup, the status line and JSON calls to the REST API of `omniseg serve`.
export const $ = (id) => document.getElementById(id);

export const setStatus = (text) => { $("status").textContent = text; };

export async function api(path, options) {
  const response = await fetch(path, options);
  const body = await response.json().catch(() => ({ detail: response.statusText }));
  if (!response.ok) throw new Error(body.detail || response.statusText);
  return body;
}
