#!/usr/bin/env python3
"""gen_abi_check.py - derive the ABI cross-check's lists from our own headers.

The ABI test (tests/abi/test_abi_cuda.c) compares abi/vgpool_cuda.h and
abi/vgpool_cuda_procs.def with NVIDIA's cuda.h and cudaTypedefs.h. What it
compares must come from our headers, not from a hand-kept list, so that a
struct, enum constant or entry point added to abi/ is checked without anyone
remembering to add it. This script writes two include files of X-macro
records, each compiled into C by the check's translation units:

  abi_layout.gen.h: every typedef, struct/union (with every field, nested ones by
    path), enum constant and object-like #define that abi/vgpool_cuda.h
    declares. abi_table.c includes it twice over: once against our header and
    once against the real cuda.h, and the compiler works out sizes, offsets
    and values on both sides.
  abi_procs.gen.h: every VGP_CU_PROC entry with the name of NVIDIA's versioned PFN
    typedef for it, and every real variant of a listed base that the .def
    leaves out, broken down parameter by parameter (and struct member by
    member) so that the test can prove it is a legacy 32-bit variant.

Both headers are read after the C preprocessor has run over them (the
compiler's own, passed with --cc), so comments, conditionals and macros are
resolved exactly as in a build. Names that the toolkit does not declare are
marked absent, so that a difference becomes a test failure with a message
rather than a compile error.

Runs with plain python3, no third-party modules.
"""

import argparse
import os
import re
import shlex
import subprocess
import sys

# ------------------------------------------------------------------ lexing

TOKEN_RE = re.compile(r'''
    (?P<ws>\s+)
  | (?P<id>[A-Za-z_]\w*)
  | (?P<num>(?:0[xX][0-9a-fA-F]+|\d+(?:\.\d*)?(?:[eE][+-]?\d+)?)[uUlLfF]*)
  | (?P<str>"(?:\\.|[^"\\])*")
  | (?P<chr>'(?:\\.|[^'\\])*')
  | (?P<punct>\.\.\.|<<=|>>=|->|\+\+|--|<<|>>|<=|>=|==|!=|&&|\|\||[-+*/%&|^!~<>=?:;,.()\[\]{}])
''', re.X)

QUALIFIERS = {'const', 'volatile', 'restrict', '__restrict', '__restrict__',
              '_Atomic', 'static', 'extern', 'inline', '__inline',
              '__inline__', 'register', '_Noreturn', '__extension__'}
BASIC_TYPES = {'void', 'char', 'short', 'int', 'long', 'float', 'double',
               'signed', 'unsigned', '_Bool', '__int128', '_Float128'}
AGG_KW = {'struct', 'union', 'enum'}
ATTR_KW = {'__attribute__', '__attribute', '__declspec', '__asm__', '__asm',
           'asm'}


class ParseError(Exception):
    pass


def tokenize(text):
    toks = []
    pos = 0
    while pos < len(text):
        m = TOKEN_RE.match(text, pos)
        if not m:
            raise ParseError('cannot tokenize near %r' % text[pos:pos + 40])
        pos = m.end()
        if m.lastgroup != 'ws':
            toks.append(m.group())
    return toks


def is_ident(tok):
    return re.match(r'[A-Za-z_]\w*$', tok) is not None


def preprocess(cc, args, source_text, keep):
    """Runs the compiler's preprocessor over source_text. Returns (code,
    macros): the code lines of the files for which keep(path) is true, and
    the object-like macros defined in those files (name -> body)."""
    cmd = cc + ['-E', '-dD', '-x', 'c', '-std=gnu11'] + args + ['-']
    res = subprocess.run(cmd, input=source_text, capture_output=True,
                         text=True)
    if res.returncode != 0:
        sys.stderr.write(res.stderr)
        raise SystemExit('gen_abi_check: preprocessing failed: %s'
                         % ' '.join(cmd))
    code = []
    macros = {}
    current = None
    cache = {}
    for line in res.stdout.splitlines():
        m = re.match(r'#\s*(\d+)\s+"((?:\\.|[^"\\])*)"', line)
        if m:
            path = m.group(2)
            if path not in cache:
                cache[path] = keep(path)
            current = cache[path]
            continue
        if not current:
            continue
        if line.startswith('#'):
            d = re.match(r'#\s*define\s+([A-Za-z_]\w*)(\(?)\s*(.*)$', line)
            if d and not d.group(2):
                macros[d.group(1)] = d.group(3)
            continue
        code.append(line)
    return '\n'.join(code), macros


# ----------------------------------------------------------------- parsing

def skip_group(toks, i):
    """toks[i] opens a (, [ or {; returns the index after its match."""
    pairs = {'(': ')', '[': ']', '{': '}'}
    stack = [pairs[toks[i]]]
    i += 1
    while stack:
        if i >= len(toks):
            raise ParseError('unbalanced brackets')
        t = toks[i]
        if t in pairs:
            stack.append(pairs[t])
        elif t in (')', ']', '}'):
            if t != stack.pop():
                raise ParseError('mismatched %s' % t)
        i += 1
    return i


def split_top(toks, sep):
    """Splits a token list at depth-0 separators."""
    parts, cur, i = [], [], 0
    while i < len(toks):
        t = toks[i]
        if t in ('(', '[', '{'):
            j = skip_group(toks, i)
            cur.extend(toks[i:j])
            i = j
            continue
        if t == sep:
            parts.append(cur)
            cur = []
        else:
            cur.append(t)
        i += 1
    if cur:
        parts.append(cur)
    return parts


def split_declarations(toks):
    """Splits a translation unit into declarations (without the ';').
    Function definitions are dropped."""
    decls, cur, i = [], [], 0
    while i < len(toks):
        t = toks[i]
        if t == '{' and cur and cur[-1] == ')':
            i = skip_group(toks, i)        # a function body
            cur = []
            continue
        if t in ('(', '[', '{'):
            j = skip_group(toks, i)
            cur.extend(toks[i:j])
            i = j
            continue
        if t == ';':
            decls.append(cur)
            cur = []
        else:
            cur.append(t)
        i += 1
    return decls


class Agg:
    """A struct or union body: kind, tag (or None) and its members."""

    def __init__(self, kind, tag):
        self.kind = kind
        self.tag = tag
        # (name or None, type text or None, nested Agg or None)
        self.members = []

    def paths(self, prefix=''):
        """Every field as (path, type text or None), nested ones by path;
        members of anonymous struct/union members are the parent's."""
        out = []
        for name, ttext, nested in self.members:
            if name is None:
                if nested is not None:
                    out.extend(nested.paths(prefix))
                continue
            out.append((prefix + name, ttext))
            if nested is not None and nested.tag is None:
                out.extend(nested.paths(prefix + name + '.'))
        return out


class Spec:
    def __init__(self):
        self.tokens = []      # the specifier as a type name (None: anonymous)
        self.agg = None       # Agg defined here
        self.enumerators = None


def strip_attributes(toks):
    out, i = [], 0
    while i < len(toks):
        if toks[i] in ATTR_KW:
            i += 1
            if i < len(toks) and toks[i] == '(':
                i = skip_group(toks, i)
            continue
        out.append(toks[i])
        i += 1
    return out


def parse_specifiers(toks):
    """Returns (Spec, index of the first declarator token)."""
    spec = Spec()
    have_type = False
    i = 0
    anonymous = False
    while i < len(toks):
        t = toks[i]
        if t in QUALIFIERS:
            if t in ('const', 'volatile'):
                spec.tokens.append(t)
            i += 1
        elif t in BASIC_TYPES:
            spec.tokens.append(t)
            have_type = True
            i += 1
        elif t in AGG_KW:
            kind = t
            i += 1
            tag = None
            if i < len(toks) and is_ident(toks[i]):
                tag = toks[i]
                i += 1
            if i < len(toks) and toks[i] == '{':
                j = skip_group(toks, i)
                body = toks[i + 1:j - 1]
                if kind == 'enum':
                    spec.enumerators = parse_enum_body(body)
                else:
                    spec.agg = parse_agg_body(kind, tag, body)
                i = j
            if tag is None:
                anonymous = True
            else:
                spec.tokens.extend([kind, tag])
            have_type = True
        elif is_ident(t) and not have_type:
            spec.tokens.append(t)
            have_type = True
            i += 1
        else:
            break
    if not have_type:
        raise ParseError('no type in %s' % ' '.join(toks[:8]))
    if anonymous:
        spec.tokens = None
    return spec, i


def parse_enum_body(body):
    names = []
    for part in split_top(body, ','):
        part = strip_attributes(part)
        if not part:
            continue
        if not is_ident(part[0]):
            raise ParseError('bad enumerator %s' % ' '.join(part))
        names.append(part[0])
    return names


def parse_declarator(toks):
    """Returns (name, abstract declarator tokens): the declared identifier
    and the declarator with it removed, which C's grammar makes a type name
    once the specifiers are put in front."""
    toks = strip_attributes(toks)
    depth = 0
    for k, t in enumerate(toks):
        if t == '[':
            depth += 1
        elif t == ']':
            depth -= 1
        elif depth == 0 and is_ident(t) and t not in QUALIFIERS:
            return t, toks[:k] + toks[k + 1:]
    return None, toks


def parse_agg_body(kind, tag, body):
    agg = Agg(kind, tag)
    for decl in split_top(body, ';'):
        decl = strip_attributes(decl)
        if not decl:
            continue
        if ':' in decl:
            raise ParseError('bit-fields are not supported (%s)'
                             % ' '.join(decl))
        spec, i = parse_specifiers(decl)
        declarators = split_top(decl[i:], ',')
        if not declarators:
            agg.members.append((None, None, spec.agg))
            continue
        for d in declarators:
            name, abstract = parse_declarator(d)
            if name is None:
                raise ParseError('member without a name in %s'
                                 % ' '.join(decl))
            ttext = None
            if spec.tokens is not None:
                ttext = ' '.join(spec.tokens + abstract)
            nested = spec.agg if not abstract else None
            agg.members.append((name, ttext, nested))
    return agg


class Model:
    """What one header declares."""

    def __init__(self):
        self.order = []          # records in declaration order (ours only)
        self.typedefs = {}       # name -> ('agg', Agg) | ('type', tokens)
        self.tags = {}           # 'struct X' -> Agg
        self.enumerators = []    # in order
        self.macros = {}
        self.skipped = 0         # declarations not understood (real only)

    def add_decl(self, decl):
        decl = strip_attributes(decl)
        if not decl:
            return
        is_typedef = 'typedef' in decl
        if is_typedef:
            decl = [t for t in decl if t != 'typedef']
        spec, i = parse_specifiers(decl)
        if spec.enumerators is not None:
            self.enumerators.extend(spec.enumerators)
            self.order.extend(('enumc', n) for n in spec.enumerators)
        agg_named = False
        if spec.agg is not None and spec.agg.tag is not None:
            key = '%s %s' % (spec.agg.kind, spec.agg.tag)
            self.tags[key] = spec.agg
        if not is_typedef:
            # A tag definition on its own ('struct X {...};') is checked
            # under its tag name; prototypes and objects are not layouts.
            if spec.agg is not None and spec.agg.tag is not None and \
                    not decl[i:]:
                key = '%s %s' % (spec.agg.kind, spec.agg.tag)
                self.order.append(('agg', key, key, spec.agg))
            return
        for d in split_top(decl[i:], ','):
            name, abstract = parse_declarator(d)
            if name is None:
                raise ParseError('typedef without a name: %s' % ' '.join(d))
            if spec.agg is not None and not abstract and not agg_named:
                agg_named = True
                self.typedefs[name] = ('agg', spec.agg)
                ttext = ' '.join(spec.tokens) if spec.tokens else None
                self.order.append(('agg', name, ttext, spec.agg))
                continue
            if spec.tokens is None:
                if abstract:
                    raise ParseError('typedef %s derived from an anonymous '
                                     'type' % name)
                # typedef enum { ... } name;  (no tag to compare)
                self.typedefs[name] = ('type', ['enum'])
                self.order.append(('type', name, None))
                continue
            ttoks = spec.tokens + abstract
            self.typedefs[name] = ('type', ttoks)
            self.order.append(('type', name, ' '.join(ttoks)))

    def resolve_agg(self, name, depth=0):
        """The Agg a typedef (or 'struct TAG') name denotes, or None."""
        if depth > 16:
            return None
        if name in self.tags:
            return self.tags[name]
        ent = self.typedefs.get(name)
        if ent is None:
            return None
        if ent[0] == 'agg':
            return ent[1]
        toks = [t for t in ent[1] if t not in ('const', 'volatile')]
        if len(toks) == 1:
            return self.resolve_agg(toks[0], depth + 1)
        if len(toks) == 2 and toks[0] in AGG_KW:
            return self.tags.get(' '.join(toks))
        return None


def build_model(code, macros, strict):
    model = Model()
    model.macros = macros
    for decl in split_declarations(tokenize(code)):
        try:
            model.add_decl(decl)
        except ParseError as e:
            if strict:
                raise SystemExit('gen_abi_check: cannot check this '
                                 'declaration of our header: %s\n  (%s)'
                                 % (' '.join(decl)[:200], e))
            model.skipped += 1
    return model


# ------------------------------------------------------- layout records

def c_paren(text):
    return '(%s)' % text


def layout_records(ours, real):
    """The lines of the layout records and counts of what they check."""
    counts = {'type': 0, 'agg': 0, 'field': 0, 'enumc': 0, 'define': 0}
    lines = []
    seen_enum = set()
    for rec in ours.order:
        kind = rec[0]
        if kind == 'type':
            _, name, ttext = rec
            present = int(name in real.typedefs)
            if ttext is None:
                lines.append('VGP_ABI_TYPE_NT(%s, %d)' % (name, present))
            else:
                lines.append('VGP_ABI_TYPE(%s, %s, %d)'
                             % (name, c_paren(ttext), present))
            counts['type'] += 1
        elif kind == 'agg':
            _, name, ttext, agg = rec
            ragg = real.resolve_agg(name)
            present = int(ragg is not None)
            if ttext is None:
                lines.append('VGP_ABI_AGG_NT(%s, %d)' % (name, present))
            else:
                lines.append('VGP_ABI_AGG(%s, %s, %d)'
                             % (name, c_paren(ttext), present))
            counts['agg'] += 1
            real_paths = set(p for p, _ in ragg.paths()) if ragg else set()
            for path, ftext in agg.paths():
                fpresent = int(path in real_paths)
                if ftext is None:
                    lines.append('VGP_ABI_FIELD_NT(%s, %s, %d)'
                                 % (name, path, fpresent))
                else:
                    lines.append('VGP_ABI_FIELD(%s, %s, %s, %d)'
                                 % (name, path, c_paren(ftext), fpresent))
                counts['field'] += 1
        elif kind == 'enumc':
            name = rec[1]
            if name in seen_enum:
                continue
            seen_enum.add(name)
            present = int(name in real.enumerators or name in real.macros)
            lines.append('VGP_ABI_ENUMC(%s, %d)' % (name, present))
            counts['enumc'] += 1
    for name, body in ours.macros.items():
        if name.startswith(('VGP_', 'VGPOOL_', '_')):
            continue            # ours, the include guard, reserved names
        if not body.strip():
            continue            # empty (CUDAAPI and the like): no value
        present = int(name in real.macros or name in real.enumerators)
        lines.append('VGP_ABI_DEFINE(%s, %d)' % (name, present))
        counts['define'] += 1
    return lines, counts


# -------------------------------------------------------- procs records

PROC_RE = re.compile(r'VGP_CU_PROC\(\s*(\w+)\s*,\s*"(\w+)"\s*,\s*(\d+)\s*,'
                     r'\s*([01])\s*,\s*\((.*)\)\s*\)\s*$')


def read_def(path):
    with open(path) as f:
        text = f.read()
    text = re.sub(r'/\*.*?\*/', lambda m: '\n' * m.group().count('\n'),
                  text, flags=re.S)
    text = re.sub(r'//[^\n]*', '', text)
    procs = []
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        m = PROC_RE.match(line)
        if not m:
            raise SystemExit('%s:%d: not a VGP_CU_PROC(symbol, "base", '
                             'version, per_thread, (params)) line'
                             % (path, lineno))
        procs.append({'symbol': m.group(1), 'base': m.group(2),
                      'version': int(m.group(3)),
                      'pt': int(m.group(4)), 'line': lineno})
    return procs


def pfn_params(model, pfn):
    """The parameter declarations of a PFN typedef, as (spec tokens,
    abstract declarator tokens, name) triples."""
    ent = model.typedefs.get(pfn)
    if ent is None or ent[0] != 'type':
        return None
    toks = ent[1]
    # CUresult ( * ) ( params )
    k = toks.index('(') if '(' in toks else -1
    if k < 0:
        return None
    j = skip_group(toks, k)
    if j >= len(toks) or toks[j] != '(':
        return None
    end = skip_group(toks, j)
    params = []
    for p in split_top(toks[j + 1:end - 1], ','):
        if p == ['void']:
            continue
        spec, i = parse_specifiers(p)
        name, abstract = parse_declarator(p[i:])
        params.append((spec.tokens, abstract, name))
    return params


def legacy_items(model, base, version, old, new):
    """Compares the parameters of an omitted variant with its listed
    successor. Returns (note, items): note explains why it cannot be a
    legacy 32-bit variant ('' if it may be one), items are (what, old type,
    new type) for the test to compare."""
    if old is None or new is None:
        return ('cannot read the PFN typedef of the omitted variant or of '
                'its listed successor'), []
    if len(old) != len(new):
        return ('takes %d parameters where its successor takes %d'
                % (len(old), len(new))), []
    items = []
    for (ospec, oabs, oname), (nspec, nabs, nname) in zip(old, new):
        what = oname or '?'
        otext = ' '.join(ospec + oabs)
        ntext = ' '.join(nspec + nabs)
        if otext == ntext:
            items.append((what, otext, ntext))
            continue
        if oabs == ['*'] and nabs == ['*']:
            ob = [t for t in ospec if t not in ('const', 'volatile')]
            nb = [t for t in nspec if t not in ('const', 'volatile')]
            oagg = model.resolve_agg(' '.join(ob))
            nagg = model.resolve_agg(' '.join(nb))
            if oagg is None and nagg is None:
                if ob == ['void'] or nb == ['void']:
                    return '%s: void pointer against %s' % (
                        what, ntext), []
                items.append(('*' + what, ' '.join(ob), ' '.join(nb)))
                continue
            if oagg is None or nagg is None:
                return '%s: %s against %s' % (what, otext, ntext), []
            op, np_ = oagg.paths(), nagg.paths()
            if [p for p, _ in op] != [p for p, _ in np_]:
                return ('%s: struct %s has other members than %s'
                        % (what, ' '.join(ob), ' '.join(nb))), []
            for (path, ot), (_, nt) in zip(op, np_):
                if ot is None or nt is None:
                    return '%s->%s: nested struct' % (what, path), []
                items.append(('%s->%s' % (what, path), ot, nt))
            continue
        if oabs or nabs:
            return '%s: %s against %s' % (what, otext, ntext), []
        items.append((what, otext, ntext))
    return '', items


def c_str(s):
    return '"%s"' % s.replace('\\', '\\\\').replace('"', '\\"')


def procs_records(procs, real):
    lines = []
    counts = {'proc': 0, 'omitted': 0}
    pfns = set(n for n in real.typedefs if n.startswith('PFN_'))
    seen_sym, seen_var = {}, {}
    bases = []
    for p in procs:
        sym, base, ver, pt = p['symbol'], p['base'], p['version'], p['pt']
        suffix = ''
        for s in ('_ptsz', '_ptds'):
            if sym.endswith(s):
                suffix = s
        notes = []
        if pt and not suffix:
            notes.append('per_thread is 1 but the symbol has no _ptsz/_ptds '
                         'suffix')
        if suffix and not pt:
            notes.append('the symbol ends in %s but per_thread is 0' % suffix)
        if not re.match(re.escape(base) + r'(_v\d+)?(_ptsz|_ptds)?$', sym):
            notes.append('symbol %s is not a variant of base %s' % (sym, base))
        if sym in seen_sym:
            notes.append('symbol listed twice (also line %d)' % seen_sym[sym])
        seen_sym[sym] = p['line']
        key = (base, ver, suffix)
        if key in seen_var:
            notes.append('(%s, %d%s) is listed twice (also line %d)'
                         % (base, ver, suffix, seen_var[key]))
        seen_var[key] = p['line']
        if base not in bases:
            bases.append(base)
        pfn = 'PFN_%s_v%d%s' % (base, ver, suffix)
        lines.append('VGP_ABI_PROC(%s, %s, %d, %d, %s, %d, %s)'
                     % (sym, c_str(base), ver, pt, pfn, int(pfn in pfns),
                        c_str('; '.join(notes))))
        counts['proc'] += 1
    for base in bases:
        rx = re.compile('PFN_' + re.escape(base) + r'_v(\d+)(_ptsz|_ptds)?$')
        real_vars = []
        for n in pfns:
            m = rx.match(n)
            if m:
                real_vars.append((int(m.group(1)), m.group(2) or '', n))
        real_vars.sort()
        listed = [(v, s) for (b, v, s) in seen_var if b == base]
        for ver, suffix, pfn in real_vars:
            if (ver, suffix) in listed:
                continue
            later = sorted(v for v, s in listed if s == suffix and v > ver)
            counts['omitted'] += 1
            if not later:
                note = ('no newer variant with this stream suffix is listed: '
                        'the .def misses this one')
                succ = ''
                items = []
            else:
                succ = 'PFN_%s_v%d%s' % (base, later[0], suffix)
                note, items = legacy_items(real, base, ver,
                                           pfn_params(real, pfn),
                                           pfn_params(real, succ))
            lines.append('VGP_ABI_OMITTED(%s, %d, %s, %s, %s)'
                         % (c_str(base), ver, c_str(pfn), c_str(succ),
                            c_str(note)))
            for what, ot, nt in items:
                lines.append('VGP_ABI_OMITTED_ITEM(%s, %s, %s, %s)'
                             % (c_str(pfn), c_str(what), c_paren(ot),
                                c_paren(nt)))
    return lines, counts


# -------------------------------------------------------------------- main

HEADER = '''/* Generated by tests/abi/gen_abi_check.py from %s
 * and the toolkit headers in %s; do not edit.
 * %s */
'''


def write(path, lines, source, include_dir, counts):
    summary = ', '.join('%d %s' % (v, k) for k, v in sorted(counts.items()))
    text = HEADER % (os.path.normpath(source), include_dir, summary) + '\n'.join(lines) + '\n'
    old = None
    if os.path.exists(path):
        with open(path) as f:
            old = f.read()
    if old != text:
        with open(path, 'w') as f:
            f.write(text)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--cc', required=True,
                    help='the C compiler command (one shell-quoted string)')
    ap.add_argument('--ours', required=True, help='abi/vgpool_cuda.h')
    ap.add_argument('--def', dest='defs', required=True,
                    help='abi/vgpool_cuda_procs.def')
    ap.add_argument('--toolkit-include', required=True,
                    help='the include directory of the CUDA toolkit')
    ap.add_argument('--out-layout', required=True)
    ap.add_argument('--out-procs', required=True)
    args = ap.parse_args()

    cc = shlex.split(args.cc)
    inc = os.path.realpath(args.toolkit_include)
    ours_path = os.path.realpath(args.ours)

    def in_toolkit(path):
        return os.path.realpath(path).startswith(inc + os.sep)

    def is_ours(path):
        return os.path.realpath(path) == ours_path

    code, macros = preprocess(cc, ['-I', os.path.dirname(ours_path)],
                              '#include "%s"\n' % ours_path, is_ours)
    ours = build_model(code, macros, strict=True)
    code, macros = preprocess(cc, ['-I', inc], '#include <cuda.h>\n',
                              in_toolkit)
    real = build_model(code, macros, strict=False)
    code, macros = preprocess(cc, ['-I', inc],
                              '#define __CUDA_API_VERSION_INTERNAL 1\n'
                              '#include <cudaTypedefs.h>\n', in_toolkit)
    real_internal = build_model(code, macros, strict=False)

    lines, counts = layout_records(ours, real)
    write(args.out_layout, lines, args.ours, inc, counts)
    lines, counts = procs_records(read_def(args.defs), real_internal)
    write(args.out_procs, lines, args.defs, inc, counts)


if __name__ == '__main__':
    main()
