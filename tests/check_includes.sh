#!/usr/bin/python3
# The include graph of gateway/, policies/ and storage/ must have no cycle,
# and each folder may include only the folders below it (FOLDERS), so that
# the layering can be drawn.  A module is a .c file together with its
# same-named .h and its private X_int.h (a header alone is a module too);
# module A depends on module B when A.c or A.h includes B.h.  Every strongly
# connected set of modules is reported with one cycle through it, every
# include that climbs a layer with the file that makes it; either fails
# the check (exit status 1).
# Usage: tests/check_includes.sh [source root]
import os
import re
import sys

# Folder -> the folders its files may include (besides its own).  Headers
# are named from an -I directory: "core/log.h" under gateway/, "policy.h"
# in policies/, "store.h" in storage/.
CORE = "gateway/core"
HTTP = "gateway/http"
SESSION = "gateway/session"
OIDC = "gateway/oidc"
ROUTE = "gateway/route"
FOLDERS = {
    CORE: (),
    "policies": (CORE,),
    "storage": (CORE,),
    HTTP: (CORE,),
    SESSION: (CORE, HTTP, "policies", "storage"),
    OIDC: (CORE, HTTP, SESSION, "policies"),
    ROUTE: (CORE, HTTP, SESSION, OIDC, "policies"),
    "gateway": (CORE, HTTP, SESSION, OIDC, ROUTE, "policies", "storage"),
}
INCLUDE_DIRS = ("gateway", "policies", "storage")
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def module_of(base):
    """X_int (a module's private header) is part of module X."""
    return base[:-4] if base.endswith("_int") else base


def modules(root):
    """Map each module (folder/base) to the files it is made of."""
    mods = {}
    for d in FOLDERS:
        for f in sorted(os.listdir(os.path.join(root, d))):
            base, ext = os.path.splitext(f)
            if ext in (".c", ".h"):
                base = module_of(base)
                mods.setdefault(d + "/" + base, []).append(d + "/" + f)
    return mods


def resolve(root, src_dir, name):
    """The module a quoted include names: beside the file first, then
    the -I directories in the Makefile's order; None when it is not ours."""
    for d in (src_dir,) + INCLUDE_DIRS:
        path = os.path.normpath(os.path.join(d, name))
        if os.path.exists(os.path.join(root, path)):
            base = os.path.splitext(os.path.basename(path))[0]
            return os.path.dirname(path) + "/" + module_of(base)
    return None


def graph(root):
    """The module graph, and for each edge the file that makes it."""
    mods = modules(root)
    edges = {m: set() for m in mods}
    via = {}
    for m, files in mods.items():
        for f in files:
            with open(os.path.join(root, f), encoding="utf-8") as fp:
                text = fp.read()
            for name in INCLUDE.findall(text):
                dep = resolve(root, os.path.dirname(f), name)
                if dep is None or dep == m or not name.endswith(".h"):
                    continue
                edges[m].add(dep)
                via.setdefault((m, dep), f)
    return edges, via


def components(edges):
    """Tarjan's strongly connected components, iteratively."""
    index, low, onstack, stack, out = {}, {}, set(), [], []
    counter = [0]
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = counter[0]
        counter[0] += 1
        stack.append(start)
        onstack.add(start)
        while work:
            v, it = work[-1]
            advanced = False
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    onstack.add(w)
                    work.append((w, iter(sorted(edges[w]))))
                    advanced = True
                    break
                if w in onstack:
                    low[v] = min(low[v], index[w])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    onstack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def one_cycle(edges, comp):
    """A shortest cycle through the component's first module."""
    inside = set(comp)
    start = comp[0]
    prev = {start: None}
    queue = [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(edges[v]):
            if w not in inside:
                continue
            if w == start:
                path = [v]
                while prev[path[-1]] is not None:
                    path.append(prev[path[-1]])
                path.reverse()
                return path + [start]
            if w not in prev:
                prev[w] = v
                queue.append(w)
    return comp


def report(edges, via, comps, what):
    for comp in comps:
        cyc = one_cycle(edges, comp)
        print("%s among %d modules: %s" % (what, len(comp), " ".join(comp)))
        steps = ["%s (%s)" % (b, via[(a, b)]) for a, b in zip(cyc, cyc[1:])]
        print("  for example: %s -> %s" % (cyc[0], " -> ".join(steps)))


def climbs(edges, via):
    """Every include of a folder its folder may not include."""
    bad = []
    for (a, b), f in sorted(via.items()):
        fa, fb = os.path.dirname(a), os.path.dirname(b)
        if fa != fb and fb not in FOLDERS[fa]:
            bad.append("%s includes %s: %s may not include %s" % (
                f, b, fa, fb))
    return bad


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "."
    edges, via = graph(root)
    status = 0
    comps = components(edges)
    if comps:
        report(edges, via, comps, "include cycle")
        status = 1
    for line in climbs(edges, via):
        print(line)
        status = 1
    if status == 0:
        print("includes: no cycle, and each of %d folders includes only "
              "the folders below it" % len(FOLDERS))
    return status


if __name__ == "__main__":
    sys.exit(main())
