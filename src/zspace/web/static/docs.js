// Renders the OpenAPI schema of this server as a plain HTML reference.
"use strict";

function element(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  return node;
}

function describeSchema(schema) {
  if (!schema) return "";
  const options = schema.anyOf ? schema.anyOf.filter((s) => s.type !== "null") : [schema];
  return options.map((s) => {
    const limits = [];
    if (s.enum) limits.push(`one of ${s.enum.join(", ")}`);
    if (s.minimum !== undefined) limits.push(`>= ${s.minimum}`);
    if (s.maximum !== undefined) limits.push(`<= ${s.maximum}`);
    return `${s.type || ""}${limits.length ? ` (${limits.join(", ")})` : ""}`;
  }).join(" or ");
}

function exampleUrl(path, parameters) {
  const examples = { digit: 7, n: 16, seed: 3, from_digit: 3, to_digit: 8, steps: 8 };
  const query = parameters.filter((p) => p.in === "query" && p.name in examples)
    .map((p) => `${p.name}=${examples[p.name]}`).join("&");
  return query ? `${path}?${query}` : path;
}

async function render() {
  const spec = await (await fetch("/openapi.json")).json();
  const root = document.getElementById("reference");
  root.replaceChildren();
  for (const [path, operations] of Object.entries(spec.paths)) {
    for (const [method, operation] of Object.entries(operations)) {
      const section = element("section");
      const title = element("h2");
      title.append(element("span", method.toUpperCase(), `method ${method}`), element("code", path));
      section.append(title);
      if (operation.summary) section.append(element("p", operation.summary));
      if (operation.description) section.append(element("p", operation.description, "muted"));
      const parameters = operation.parameters || [];
      if (parameters.length) {
        const table = element("table");
        const head = element("tr");
        ["parameter", "type", "default", "description"].forEach((h) => head.append(element("th", h)));
        table.append(head);
        for (const p of parameters) {
          const row = element("tr");
          row.append(element("td", p.name + (p.required ? " *" : "")), element("td", describeSchema(p.schema)),
            element("td", p.schema && p.schema.default !== undefined ? String(p.schema.default) : ""),
            element("td", p.description || (p.schema && p.schema.description) || ""));
          table.append(row);
        }
        section.append(table);
      }
      if (operation.requestBody) {
        const body = operation.requestBody;
        section.append(element("p", `Body: ${body.description || ""} Types: ${Object.keys(body.content).join(", ")}.`));
        section.append(element("p", `curl -F image=@digit.png http://HOST${path}`, "muted"));
      }
      if (method === "get") {
        const link = element("a", `try ${exampleUrl(path, parameters)}`);
        link.href = exampleUrl(path, parameters);
        section.append(link);
      }
      root.append(section);
    }
  }
}

render().catch((error) => {
  document.getElementById("reference").textContent = `could not load /openapi.json: ${error}`;
});
