// A small Markdown subset for model output, built as DOM nodes: the text is never parsed as HTML, so `<script>` or
// `<img onerror=…>` in a reply shows up as those characters. Supported: fenced code blocks, inline code, bullet and
// numbered lists (nested by indentation), headings, block quotes, rules, **bold**, *italic*, [links](https://…) and
// bare http(s) URLs. Anything else is plain text. Streaming-friendly: an unclosed fence renders as code so far.

const MAX_DEPTH = 6; // nesting of lists/quotes/emphasis; deeper input is shown as text

const FENCE = /^ {0,3}(`{3,}|~{3,})\s*([\w+#.-]*)/;
const HEADING = /^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$/;
const RULE = /^ {0,3}([-*_])(\s*\1){2,}\s*$/;
const QUOTE = /^ {0,3}>\s?/;
const ITEM = /^(\s*)([-*+]|\d{1,9}[.)])\s+(.*)$/;
const BLANK = /^\s*$/;

/** The rendered fragment for `text`. */
export function renderMarkdown(text) {
  const fragment = document.createDocumentFragment();
  renderBlocks(fragment, String(text).replace(/\r\n?/g, "\n").split("\n"), 0);
  return fragment;
}

function renderBlocks(parent, lines, depth) {
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (BLANK.test(line)) {
      i += 1;
      continue;
    }
    const fence = line.match(FENCE);
    if (fence) {
      i = codeBlock(parent, lines, i, fence);
      continue;
    }
    const heading = line.match(HEADING);
    if (heading) {
      const el = document.createElement(`h${Math.min(heading[1].length + 2, 6)}`);
      renderInline(el, heading[2], depth);
      parent.append(el);
      i += 1;
      continue;
    }
    if (RULE.test(line)) {
      parent.append(document.createElement("hr"));
      i += 1;
      continue;
    }
    if (depth < MAX_DEPTH && QUOTE.test(line)) {
      const quoted = [];
      while (i < lines.length && QUOTE.test(lines[i])) quoted.push(lines[i++].replace(QUOTE, ""));
      const el = document.createElement("blockquote");
      renderBlocks(el, quoted, depth + 1);
      parent.append(el);
      continue;
    }
    if (depth < MAX_DEPTH && ITEM.test(line)) {
      i = list(parent, lines, i, depth);
      continue;
    }
    i = paragraph(parent, lines, i, depth);
  }
}

function startsBlock(line) {
  return FENCE.test(line) || HEADING.test(line) || RULE.test(line) || QUOTE.test(line) || ITEM.test(line);
}

function codeBlock(parent, lines, start, fence) {
  const [marker, language] = [fence[1], fence[2]];
  const closing = new RegExp(`^ {0,3}${marker[0] === "`" ? "`" : "~"}{${marker.length},}\\s*$`);
  const body = [];
  let i = start + 1;
  while (i < lines.length && !closing.test(lines[i])) body.push(lines[i++]);
  const pre = document.createElement("pre");
  const code = document.createElement("code");
  if (language) code.dataset.language = language;
  code.textContent = body.join("\n");
  pre.append(code);
  parent.append(pre);
  return i + 1; // past the closing fence (or the end, while it is still streaming)
}

function paragraph(parent, lines, start, depth) {
  const body = [lines[start]];
  let i = start + 1;
  while (i < lines.length && !BLANK.test(lines[i]) && !startsBlock(lines[i])) body.push(lines[i++]);
  const p = document.createElement("p");
  renderInline(p, body.map((l) => l.trim()).join("\n"), depth);
  parent.append(p);
  return i;
}

function indentOf(line) {
  return line.match(/^\s*/)[0].replace(/\t/g, "    ").length;
}

function list(parent, lines, start, depth) {
  const first = lines[start].match(ITEM);
  const indent = indentOf(first[1]);
  const ordered = /\d/.test(first[2]);
  const el = document.createElement(ordered ? "ol" : "ul");
  if (ordered && parseInt(first[2], 10) !== 1) el.start = parseInt(first[2], 10);
  let i = start;
  while (i < lines.length) {
    const item = lines[i].match(ITEM);
    if (!item || indentOf(item[1]) !== indent || /\d/.test(item[2]) !== ordered) break;
    // The item's own text, then every following line that belongs to it (indented deeper, or a lazy continuation).
    const body = [item[3]];
    i += 1;
    while (i < lines.length) {
      const line = lines[i];
      if (BLANK.test(line)) {
        const next = lines.slice(i + 1).find((l) => !BLANK.test(l));
        if (next === undefined || indentOf(next) <= indent) break;
        body.push("");
        i += 1;
        continue;
      }
      const deeper = indentOf(line) > indent;
      if (!deeper && startsBlock(line)) break;
      body.push(deeper ? line.slice(Math.min(indentOf(line), indent + 4)) : line);
      i += 1;
    }
    const li = document.createElement("li");
    if (body.slice(1).some((l) => BLANK.test(l) || startsBlock(l))) renderBlocks(li, body, depth + 1);
    else renderInline(li, body.map((l) => l.trim()).join("\n"), depth); // a tight item: no paragraph around it
    el.append(li);
    // A blank line between items of the same list keeps the list going.
    while (i < lines.length && BLANK.test(lines[i])) {
      const next = lines.slice(i).find((l) => !BLANK.test(l));
      const nextItem = next && next.match(ITEM);
      if (!nextItem || indentOf(nextItem[1]) !== indent) break;
      i += 1;
    }
  }
  parent.append(el);
  return i;
}

// Inline spans, tried in this order at each position: code, bold, italic, link, bare URL.
const INLINE = new RegExp(
  [
    /(`+)([^`]|[^`][\s\S]*?[^`])\1(?!`)/.source, // 1,2 code
    /\*\*(?!\s)([\s\S]+?)(?<!\s)\*\*/.source, // 3 bold
    /__(?!\s)([\s\S]+?)(?<!\s)__(?!\w)/.source, // 4 bold
    /\*(?![\s*])([^*\n]+?)(?<!\s)\*/.source, // 5 italic
    /(?<!\w)_(?![\s_])([^_\n]+?)(?<!\s)_(?!\w)/.source, // 6 italic
    /\[([^\]\n]+)\]\((https?:\/\/[^\s)]+)\)/.source, // 7,8 link
    /(https?:\/\/[^\s<>()]*[^\s<>().,;:!?'"*_])/.source, // 9 bare URL
  ].join("|"),
  "g",
);

function renderInline(parent, text, depth) {
  let last = 0;
  for (const m of text.matchAll(INLINE)) {
    appendText(parent, text.slice(last, m.index));
    last = m.index + m[0].length;
    if (m[2] !== undefined) {
      const code = document.createElement("code");
      code.textContent = m[2].length > 2 && m[2].startsWith(" ") && m[2].endsWith(" ") ? m[2].slice(1, -1) : m[2];
      parent.append(code);
    } else if ((m[3] ?? m[4]) !== undefined) {
      parent.append(span("strong", m[3] ?? m[4], depth));
    } else if ((m[5] ?? m[6]) !== undefined) {
      parent.append(span("em", m[5] ?? m[6], depth));
    } else if (m[7] !== undefined) {
      parent.append(link(m[8], m[7]));
    } else {
      parent.append(link(m[9], m[9]));
    }
  }
  appendText(parent, text.slice(last));
}

function span(tag, inner, depth) {
  const el = document.createElement(tag);
  if (depth < MAX_DEPTH) renderInline(el, inner, depth + 1);
  else el.textContent = inner;
  return el;
}

function link(url, label) {
  const a = document.createElement("a");
  a.href = url;
  if (a.protocol !== "http:" && a.protocol !== "https:") return document.createTextNode(label);
  a.rel = "noopener noreferrer nofollow";
  a.target = "_blank";
  a.textContent = label;
  return a;
}

/** Text with its line breaks kept as <br>. */
function appendText(parent, text) {
  const parts = text.split("\n");
  parts.forEach((part, index) => {
    if (index) parent.append(document.createElement("br"));
    if (part) parent.append(document.createTextNode(part));
  });
}
