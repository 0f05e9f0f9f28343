// Renders /openapi.json as a readable reference: one section per path and method, with its
// parameters, responses and the shared schemas. No dependencies, nothing fetched from elsewhere.
"use strict";

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

function schemaText(schema) {
  if (!schema) return "";
  if (schema.$ref) return schema.$ref.split("/").pop();
  if (schema.anyOf) return schema.anyOf.map(schemaText).join(" | ");
  if (schema.allOf) return schema.allOf.map(schemaText).join(" & ");
  if (schema.enum) return schema.enum.map((v) => JSON.stringify(v)).join(" | ");
  if ("const" in schema) return JSON.stringify(schema.const);
  if (schema.type === "array") {
    if (schema.prefixItems) return "[" + schema.prefixItems.map(schemaText).join(", ") + "]";
    return schemaText(schema.items) + "[]";
  }
  if (schema.type === "object" && schema.properties) {
    const required = new Set(schema.required || []);
    return "{" + Object.entries(schema.properties)
      .map(([k, v]) => k + (required.has(k) ? "" : "?") + ": " + schemaText(v)).join(", ") + "}";
  }
  let text = schema.type || "any";
  const bounds = [];
  if ("minimum" in schema) bounds.push("≥ " + schema.minimum);
  if ("maximum" in schema) bounds.push("≤ " + schema.maximum);
  if ("maxLength" in schema) bounds.push("length ≤ " + schema.maxLength);
  if ("default" in schema) bounds.push("default " + schema.default);
  if (bounds.length) text += " (" + bounds.join(", ") + ")";
  return text;
}

function operationSection(path, method, op) {
  const id = (method + path).replace(/[^a-z0-9]+/gi, "-");
  const section = el("section", { class: "op", id },
    el("h3", {}, el("span", { class: "method" }, method.toUpperCase()), " ", el("code", {}, path)),
    el("p", {}, op.summary || ""));
  if (op.parameters && op.parameters.length) {
    const rows = op.parameters.map((p) => el("tr", {},
      el("td", {}, el("code", {}, p.name)), el("td", {}, p.in + (p.required ? ", required" : "")),
      el("td", {}, schemaText(p.schema)), el("td", {}, p.description || "")));
    section.append(el("table", {}, el("caption", {}, "Parameters"),
      el("tr", {}, el("th", {}, "name"), el("th", {}, "in"), el("th", {}, "type"), el("th", {}, "about")),
      ...rows));
  }
  const rows = Object.entries(op.responses).map(([status, r]) => {
    const content = r.content || {};
    const types = Object.entries(content).map(([type, c]) => type + ": " + schemaText(c.schema));
    return el("tr", {}, el("td", {}, status), el("td", {}, r.description || ""),
      el("td", {}, el("code", {}, types.join("; "))));
  });
  section.append(el("table", {}, el("caption", {}, "Responses"),
    el("tr", {}, el("th", {}, "status"), el("th", {}, "meaning"), el("th", {}, "body")), ...rows));
  return section;
}

async function render() {
  const main = document.getElementById("docs");
  let spec;
  try {
    const response = await fetch("/openapi.json");
    spec = await response.json();
  } catch (error) {
    main.textContent = "Cannot load /openapi.json: " + error;
    return;
  }
  main.replaceChildren(el("h1", {}, spec.info.title), el("p", {}, spec.info.description || ""));
  const toc = el("ul", { class: "toc" });
  main.append(el("nav", { "aria-label": "operations" }, toc));
  for (const [path, item] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(item)) {
      const section = operationSection(path, method, op);
      toc.append(el("li", {}, el("a", { href: "#" + section.id }, method.toUpperCase() + " " + path)));
      main.append(section);
    }
  }
  main.append(el("h2", {}, "Schemas"));
  for (const [name, schema] of Object.entries(spec.components.schemas)) {
    main.append(el("section", { class: "schema", id: "schema-" + name },
      el("h3", {}, name), el("code", {}, schemaText(schema.allOf ? schema : { ...schema, $ref: undefined }))));
  }
}

render();
