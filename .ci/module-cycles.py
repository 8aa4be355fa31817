#!/usr/bin/env python3
"""Fails (exit 1) when a module of src/ imports, directly or through others,
a module that imports it back: ARCHITECTURE.md's rule that dependencies
point one way. Reads `use` paths and `crate::`/`super::` paths outside
comments and tests; `-v` prints each cycle's edges."""
import re, glob, os, sys
from collections import defaultdict
files = [p for p in glob.glob('src/**/*.rs', recursive=True) if not p.endswith('tests.rs') and '/tests/' not in p]
def modpath(p):
    p = p[len('src/'):-3]
    parts = p.split('/')
    if parts[-1] == 'mod' or parts[-1] == 'lib': parts = parts[:-1]
    if parts == ['main']: return 'main'
    return '::'.join(parts)
mods = {modpath(p): p for p in files}
def resolve(path, cur):
    # path like crate::a::b::c or super::x ; return the longest known module prefix
    segs = path.split('::')
    if segs[0] == 'crate': segs = segs[1:]
    elif segs[0] == 'super':
        base = cur.split('::')[:-1] if cur else []
        # count supers
        while segs and segs[0] == 'super':
            segs = segs[1:]
        segs = base + segs
    elif segs[0] == 'self':
        segs = cur.split('::') + segs[1:]
    else:
        segs = cur.split('::') + segs  # child module
    for n in range(len(segs), 0, -1):
        m = '::'.join(segs[:n])
        if m in mods: return m
    return None
edges = defaultdict(set)
for m, p in mods.items():
    s = open(p).read()
    s = s.split('#[cfg(test)]')[0]
    s = '\n'.join(l for l in s.split('\n') if not l.lstrip().startswith('//'))
    # expand `prefix::{a, b::c, D}` groups (one level) into paths
    def expand(text):
        out = []
        for pre, body in re.findall(r'\b((?:crate|super)(?:::[a-z_][a-z0-9_]*)*)::\{([^{}]*)\}', text):
            for item in body.split(','):
                item = item.strip().split(' as ')[0]
                if item:
                    out.append(pre + '::' + item if item != 'self' else pre)
        return out
    for path in expand(s):
        t = resolve(path, m)
        if t and t != m: edges[m].add(t)
    for path in re.findall(r'\b((?:crate|super)(?:::[A-Za-z_][A-Za-z0-9_]*)+)', s):
        t = resolve(path, m)
        if t and t != m: edges[m].add(t)
    for child in re.findall(r'^\s*(?:pub(?:\([a-z]+\))? )?use ([a-z_][a-z0-9_]*)::', s, re.M):
        if child in ('crate', 'super', 'self', 'std', 'core', 'alloc'):
            continue
        t = resolve(child, m)
        if t and t != m and t.startswith(m + '::'): edges[m].add(t)
# tarjan
index = {}; low = {}; st = []; on = set(); sccs = []; i = [0]
sys.setrecursionlimit(10000)
def sc(v):
    index[v] = low[v] = i[0]; i[0] += 1; st.append(v); on.add(v)
    for w in edges[v]:
        if w not in index: sc(w); low[v] = min(low[v], low[w])
        elif w in on: low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = st.pop(); on.discard(w); comp.append(w)
            if w == v: break
        if len(comp) > 1: sccs.append(sorted(comp))
for v in list(mods): 
    if v not in index: sc(v)
for c in sccs: print('CYCLE', c)
if '-v' in sys.argv:
    for c in sccs:
        for a in c:
            print(' ', a, '->', sorted(x for x in edges[a] if x in c))
print('modules', len(mods), 'cycles', len(sccs))
sys.exit(1 if sccs else 0)
