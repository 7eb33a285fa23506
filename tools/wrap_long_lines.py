"""Wrap what `ruff format` leaves over 120 characters in the notebooks' exported cells (or in .py files): comment paragraphs
rewrapped (a trailing comment moves above its line, where nbdev's docments still reads it), one-line docstrings made
triple-quoted, long string literals split into adjacent literals. What it cannot wrap (text inside a multi-line string)
is printed for a person. Usage: `python tools/wrap_long_lines.py nbs/*.ipynb`, then `ruff format nbs && nbdev_export`."""

import ast, io, json, re, sys, textwrap, tokenize
from pathlib import Path

W = 120


def _balanced(text, width):
    "`text` wrapped within `width` into as few lines as possible, of lengths as even as possible."
    wrap = lambda w: textwrap.wrap(text, w, break_long_words=False, break_on_hyphens=False)
    best = wrap(width)
    n, w = len(best), width
    while w > 20 and len(wrap(w - 1)) == n:
        w -= 1
    return wrap(w) if n > 1 else best


def _wrap_comment(text, indent):
    "Comment lines (`# ...`) at `indent` holding `text`, each within W."
    body = text.lstrip("#").strip()
    return [f"{indent}# {l}" for l in _balanced(body, W - len(indent) - 2)] or [f"{indent}#"]


def _split_points(body, fstring):
    "Positions in a string body where it may be cut: after a space, outside f-string braces."
    pts, depth, i = [], 0, 0
    while i < len(body):
        ch = body[i]
        if ch == "\\":
            i += 2
            continue
        if fstring:
            if body.startswith("{{", i) and depth == 0:
                i += 2
                continue
            if body.startswith("}}", i) and depth == 0:
                i += 2
                continue
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
        if ch == " " and depth == 0 and i + 1 < len(body) and body[i + 1] != " ":
            pts.append(i + 1)
        i += 1
    return pts


def _split_string(tok, col, cont_col):
    "Pieces of one string literal token: the first fits from `col`, the others from `cont_col`; None if it cannot be cut."
    m = re.match(r"([rRbBfFuU]*)('''|\"\"\"|'|\")", tok)
    if not m or len(m.group(2)) == 3:
        return None
    pre, q = m.group(1), m.group(2)
    body = tok[len(pre) + 1 : -1]
    pts = _split_points(body, "f" in pre.lower())
    pieces, start, avail = [], 0, W - col - len(pre) - 2
    while len(body) - start > avail:
        ok = [p for p in pts if start < p and p - start <= avail]
        if not ok:
            return None if not pieces else pieces + [f"{pre}{q}{body[start:]}{q}"]
        pieces.append(f"{pre}{q}{body[start : ok[-1]]}{q}")
        start = ok[-1]
        avail = W - cont_col - len(pre) - 2 - 1  # room for a trailing comma or paren
    pieces.append(f"{pre}{q}{body[start:]}{q}")
    return pieces


def _docstring_lines(tree):
    "Line numbers of one-line docstrings (first statement of a module, class or function)."
    out = set()
    for n in ast.walk(tree):
        if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and n.body:
            s = n.body[0]
            if (
                isinstance(s, ast.Expr)
                and isinstance(s.value, ast.Constant)
                and isinstance(s.value.value, str)
                and s.lineno == s.end_lineno
            ):
                out.add(s.lineno)
    return out


def _once(src):
    "One pass: fix the last long line that can be fixed; (new_src, fixed?, leftover line numbers)."
    lines = src.split("\n")
    long = [i for i, l in enumerate(lines, 1) if len(l) > W]
    if not long:
        return src, False, []
    try:
        toks = list(tokenize.generate_tokens(io.StringIO(src).readline))
        tree = ast.parse(src)
    except (tokenize.TokenError, SyntaxError, IndentationError):
        return src, False, long
    docs = _docstring_lines(tree)
    depth_at, d = {}, 0
    for t in toks:
        depth_at[t.start] = d
        if t.type == tokenize.OP and t.string in "([{":
            d += 1
        elif t.type == tokenize.OP and t.string in ")]}":
            d -= 1
    left = []
    for ln in reversed(long):
        line = lines[ln - 1]
        indent = line[: len(line) - len(line.lstrip())]
        on = [
            t
            for t in toks
            if t.start[0] == ln and t.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT)
        ]
        spans = [t for t in toks if t.start[0] < ln <= t.end[0] and t.type == tokenize.STRING]
        if spans:
            left.append(ln)
            continue  # inside a multi-line string: by hand
        if line.lstrip().startswith("#"):
            if line.lstrip().startswith("#|"):
                left.append(ln)
                continue
            a = b = ln - 1  # the paragraph: the comment lines around it at the same indent
            same = lambda l: (
                l.startswith(indent + "#") and not l.lstrip().startswith("#|") and l[len(indent) :].startswith("# ")
            )
            while a > 0 and same(lines[a - 1]) and lines[a - 1][len(indent) :] != "#":
                a -= 1
            while b + 1 < len(lines) and same(lines[b + 1]):
                b += 1
            text = " ".join(l.strip().lstrip("#").strip() for l in lines[a : b + 1])
            lines[a : b + 1] = _wrap_comment(text, indent)
            return "\n".join(lines), True, []
        com = [t for t in on if t.type == tokenize.COMMENT]
        if com and len(line[: com[0].start[1]].rstrip()) <= W:
            code = line[: com[0].start[1]].rstrip()
            lines[ln - 1 : ln] = _wrap_comment(com[0].string, indent) + [code]
            return "\n".join(lines), True, []
        strs = [
            t
            for t in on
            if t.type == tokenize.STRING
            and t.start[0] == t.end[0]
            and t.end[1] > W - 1
            or t.type == tokenize.STRING
            and t.start[0] == t.end[0]
            and len(t.string) > 40
            and len(line) > W
        ]
        if strs:
            t = strs[-1] if strs[-1].end[1] > W else strs[0]
            s, c0 = t.string, t.start[1]
            if ln in docs and on[0] is t and re.match(r'^"[^"\\]*"$', s):
                text = s[1:-1]
                wrapped = _balanced(text, W - len(indent) - 3)
                if len(wrapped) > 1:
                    new = (
                        [f'{indent}"""{wrapped[0]}']
                        + [f"{indent}{w}" for w in wrapped[1:-1]]
                        + [f'{indent}{wrapped[-1]}"""']
                    )
                    lines[ln - 1 : ln] = new
                    return "\n".join(lines), True, []
            inner = depth_at.get(t.start, 0) > 0
            first_tok = on[0] is t
            cont = c0 if first_tok else len(indent) + 4
            if not inner and not first_tok:
                cont = len(indent) + 4
            pieces = _split_string(s, c0 + (0 if inner else 1), cont)
            if pieces and len(pieces) > 1:
                head, tail = line[:c0], line[t.end[1] :]
                pad = " " * cont
                if inner:
                    new = [head + pieces[0]] + [pad + p for p in pieces[1:-1]] + [pad + pieces[-1] + tail]
                else:
                    new = [head + "(" + pieces[0]] + [pad + p for p in pieces[1:-1]] + [pad + pieces[-1] + ")" + tail]
                if all(len(x) <= W for x in new[:-1]):
                    lines[ln - 1 : ln] = new
                    return "\n".join(lines), True, []
        left.append(ln)
    return src, False, sorted(left)


def wrap_source(src):
    "`src` with every fixable long line wrapped; and the line numbers left over."
    for _ in range(500):
        src, fixed, left = _once(src)
        if not fixed:
            return src, left
    return src, left


def main(paths):
    for p in map(Path, paths):
        if p.suffix == ".ipynb":
            nb = json.loads(p.read_text(encoding="utf-8"))
            changed = False
            for i, c in enumerate(nb["cells"]):
                if c["cell_type"] != "code":
                    continue
                s = "".join(c["source"])
                if not re.search(r"^#\|\s*export", s, re.M):
                    continue
                new, left = wrap_source(s)
                if new != s:
                    c["source"] = new.splitlines(keepends=True)
                    changed = True
                for ln in left:
                    print(f"{p}: cell {i} ({c.get('id')}) line {ln}: {new.split(chr(10))[ln - 1][:140]}")
            if changed:
                p.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        else:
            s = p.read_text(encoding="utf-8")
            new, left = wrap_source(s)
            if new != s:
                p.write_text(new, encoding="utf-8")
            for ln in left:
                print(f"{p}:{ln}: {new.split(chr(10))[ln - 1][:140]}")


if __name__ == "__main__":
    main(sys.argv[1:])
