#!/usr/bin/env python3
"""One description of the wire: generates the stub's forwarders, the worker's handlers and the
worker's call table from the driver-API catalog and src/remoting/wire_calls.txt.

  gen_wire.py --catalog catalog.inc --calls wire_calls.txt --kinds worker/handle_table.h \
              --worker-sources worker/calls_*.cpp --stub-sources stub/api_*.cpp --out DIR

wire_calls.txt: one line per catalog symbol the stub forwards by description,

  symbol role... [flag...]      # comment

one role per parameter, in the catalog's parameter order (a symbol without parameters has no
roles). Roles:

  in            a scalar by value (enums, flags, sizes, CUdevice, ints)
  h:Kind        a handle the client must own (a HandleKind, read from worker/handle_table.h,
                or Func = Function or Kernel, AnyPool = Pool or SharedPool, AnyArray = Array
                or a mipmapped array's level), resolved to the driver's value
  new:Kind      an output pointer receiving a handle the call creates (exposed: the client
                gets its client value)
  del:Kind      a handle the call destroys (resolved, then forgotten)
  get:Kind      an output pointer receiving a handle of the client's (its client value)
  out           an output pointer to a scalar (never a handle)
  dptr          a device pointer inside the client's memory
  in_struct     a pointer to a fixed-size struct sent as the call's blob; the worker's
                structIn(s, value) (worker/calls.h) resolves the handles inside it
  out_struct    a pointer to a fixed-size struct returned as the reply's blob (on success);
                structOut(s, value) exposes the handles inside it. Each struct type the wire
                carries has both (a struct without handles says so), or the worker does not build

Flags: `post` (the stub does not wait for the reply; no outputs), `stub` (the stub implements
it by hand and the worker has no handler of its own: answered locally, or through other calls'
messages; no roles).

Hand-written worker handlers are found in the worker sources: a line starting with
`TF_CALL(sym, ...)` (or a TF_CALL_<X>(sym, ..., other args) macro that expands to one) handles
each catalog symbol it names. Hand-written stub functions are `CUresult tf_rs_<sym>(` lines.

Writes wire_forwarders.inc (stub), wire_handlers.inc (worker) and wire_table.inc (every
catalog symbol's disposition and handler). Any inconsistency is an error naming its line.
"""
import argparse
import os
import re
import sys

# Ownership checks of the pseudo-kinds `h:` may name besides HandleKind's own (read
# from worker/handle_table.h): which kinds a name may be, and the error for one that is not the
# client's.
PSEUDO_KINDS = {
    'Func': (['Function', 'Kernel'], 'CUDA_ERROR_INVALID_HANDLE'),
    'AnyPool': (['Pool', 'SharedPool'], 'CUDA_ERROR_INVALID_HANDLE'),
    'AnyArray': (['Array', 'ArrayLevel'], 'CUDA_ERROR_INVALID_HANDLE'),
}
# A graph node that is not the client's is INVALID_VALUE, as the driver answers for a node that
# does not exist; any other handle INVALID_HANDLE.
KIND_ERRORS = {'GraphNode': 'CUDA_ERROR_INVALID_VALUE'}
# Handles the stub also keeps (Client::Handle): posted calls are checked against them.
STUB_HANDLES = {'Stream', 'Event'}
SCALAR_ROLES = {'in', 'out', 'dptr', 'in_struct', 'out_struct'}
KIND_ROLES = {'h', 'new', 'del', 'get'}
FLAGS = {'post', 'stub'}


class WireError(Exception):
    pass


def parse_catalog(path):
    """{symbol: [(type, name), ...]} in catalog order."""
    entries = {}
    order = []
    pat = re.compile(r'^TF_CU_FN\((\w+), \w+, \d+, [01], \w+, \((.*?)\), \((.*?)\)\)\s*$')
    with open(path) as f:
        for line in f:
            if not line.startswith('TF_CU_FN('):
                continue
            m = pat.match(line)
            if not m:
                raise WireError('%s: cannot read catalog line: %s' % (path, line.strip()))
            symbol, params = m.group(1), m.group(2).strip()
            plist = []
            if params and params != 'void':
                for p in params.split(','):
                    p = p.strip()
                    pm = re.match(r'^(.*?)\s*\b(\w+)$', p)
                    if not pm or not pm.group(1):
                        raise WireError('%s: cannot read parameter "%s" of %s' % (path, p, symbol))
                    plist.append((pm.group(1).strip(), pm.group(2)))
            entries[symbol] = (params, plist)
            order.append(symbol)
    if not order:
        raise WireError('%s: no TF_CU_FN lines' % path)
    return entries, order


def parse_kinds(path):
    """HandleKind's names, and the ownership check of every name `h:` may use."""
    with open(path) as f:
        m = re.search(r'enum class HandleKind[^{]*\{([^}]*)\}', f.read())
    if not m:
        raise WireError('%s: no `enum class HandleKind { ... }`' % path)
    kinds = [k.strip() for k in m.group(1).split(',') if k.strip() and k.strip() != 'Count']
    checks = {k: ([k], KIND_ERRORS.get(k, 'CUDA_ERROR_INVALID_HANDLE')) for k in kinds}
    checks.update(PSEUDO_KINDS)
    return kinds, checks


def parse_role(text, where, kinds, checks):
    if text in SCALAR_ROLES:
        return (text, None)
    if ':' in text:
        role, kind = text.split(':', 1)
        if role not in KIND_ROLES:
            raise WireError('%s: unknown role "%s"' % (where, text))
        known = checks if role == 'h' else kinds
        if kind not in known:
            raise WireError('%s: unknown handle kind "%s" in "%s" (known: %s)' %
                            (where, kind, text, ', '.join(sorted(known))))
        return (role, kind)
    raise WireError('%s: unknown role "%s"' % (where, text))


def pointee(ctype):
    t = ctype.strip()
    if not t.endswith('*'):
        return None
    t = t[:-1].strip()
    t = re.sub(r'^const\s+', '', t)
    return t


def parse_calls(path, catalog, kinds, checks):
    """{symbol: {'roles': [(role, kind)], 'flags': set, 'line': n}} in file order."""
    calls = {}
    with open(path) as f:
        for n, raw in enumerate(f, 1):
            line = raw.split('#', 1)[0].split()
            if not line:
                continue
            where = '%s:%d' % (path, n)
            symbol, words = line[0], line[1:]
            if symbol not in catalog:
                raise WireError('%s: %s is not a catalog symbol' % (where, symbol))
            if symbol in calls:
                raise WireError('%s: %s is described twice (first at line %d)' %
                                (where, symbol, calls[symbol]['line']))
            flags = set(w for w in words if w in FLAGS)
            roles = [parse_role(w, where, kinds, checks) for w in words if w not in FLAGS]
            params = catalog[symbol][1]
            if 'stub' in flags:
                if roles:
                    raise WireError('%s: %s is stub-only: it takes no roles' % (where, symbol))
            elif len(roles) != len(params):
                raise WireError('%s: %s has %d parameters (%s) but %d roles' %
                                (where, symbol, len(params),
                                 ', '.join(t + ' ' + p for t, p in params) or 'none', len(roles)))
            for (role, kind), (ctype, name) in zip(roles, params):
                is_ptr = ctype.endswith('*')
                wants_ptr = role in ('out', 'new', 'get', 'in_struct', 'out_struct')
                if is_ptr != wants_ptr:
                    raise WireError('%s: %s: role "%s" does not fit parameter "%s %s"' %
                                    (where, symbol, role + (':' + kind if kind else ''), ctype, name))
                if pointee(ctype) == 'void':
                    raise WireError('%s: %s: "%s %s" points to void: its size is unknown' %
                                    (where, symbol, ctype, name))
            if 'post' in flags and any(r in ('out', 'new', 'get', 'out_struct') for r, _ in roles):
                raise WireError('%s: %s is posted: it cannot have outputs' % (where, symbol))
            for single in ('in_struct', 'out_struct'):
                if sum(1 for r, _ in roles if r == single) > 1:
                    raise WireError('%s: %s: at most one %s (one blob each way)' %
                                    (where, symbol, single))
            calls[symbol] = {'roles': roles, 'flags': flags, 'line': n}
    return calls


def scan_hand_written(paths, catalog, pattern):
    """{symbol: ('file:line', first symbol of its definition)} of hand-written implementations."""
    found = {}
    for path in paths:
        with open(path) as f:
            text = f.read()
        for m in pattern.finditer(text):
            where = '%s:%d' % (path, text.count('\n', 0, m.start()) + 1)
            symbols = []
            for a in m.group(1).split(','):
                a = a.strip()
                if not re.match(r'^cu\w+$', a):
                    break  # a TF_CALL_<X> macro's further arguments
                symbols.append(a)
            for s in symbols:
                if s not in catalog:
                    raise WireError('%s: %s is not a catalog symbol' % (where, s))
                if s in found:
                    raise WireError('%s: %s has two handlers (also %s)' % (where, s, found[s][0]))
                found[s] = (where, symbols[0])
    return found


# A worker handler: TF_CALL(sym, ...) at the start of a line (its arguments may span lines), or
# a TF_CALL_<X>(sym, ..., other args) macro that expands to one. A stub function: tf_rs_<sym>.
WORKER_HANDLER = re.compile(r'^TF_CALL\w*\(([^)]*)\)', re.M)
STUB_FUNCTION = re.compile(r'^CUresult tf_rs_(\w+)\(', re.M)


# ---- the stub's forwarders ------------------------------------------------------------------

def forwarder(symbol, params_text, params, call):
    roles, flags = call['roles'], call['flags']
    body = []
    for (role, kind), (ctype, name) in zip(roles, params):
        if role in ('out', 'new', 'get', 'in_struct', 'out_struct'):
            body.append('  if (!%s) return CUDA_ERROR_INVALID_VALUE;' % name)
    body.append('  TF_READY();')
    body.append('  FnId tf_fn = FnId::%s;' % symbol)
    if 'post' in flags:
        for (role, kind), (ctype, name) in zip(roles, params):
            if role == 'h' and kind == 'Stream':
                body.append('  if (!client().streamOk(%s)) return CUDA_ERROR_INVALID_HANDLE;' % name)
            elif role == 'h' and kind in STUB_HANDLES:
                body.append('  if (!client().hasHandle(Client::Handle::%s, %s)) '
                            'return CUDA_ERROR_INVALID_HANDLE;' % (kind, name))
    streams = [name for (role, kind), (_, name) in zip(roles, params) if role == 'h' and kind == 'Stream']
    if streams:
        body.append('  perThreadCall(tf_fn, %s);' % streams[0])
    args, outs, blob_in, blob_out = [], [], None, None
    for (role, kind), (ctype, name) in zip(roles, params):
        if role in ('in', 'h', 'del', 'dptr'):
            args.append('wire::toWire(%s)' % name)
        elif role in ('out', 'new', 'get'):
            outs.append((role, kind, ctype, name))
        elif role == 'in_struct':
            blob_in = name
        elif role == 'out_struct':
            blob_out = name
    arglist = '{' + ', '.join(args) + '}'
    blob = '%s, sizeof(*%s)' % (blob_in, blob_in) if blob_in else 'nullptr, 0'
    if 'post' in flags:
        body.append('  return client().post(tf_fn, %s, %s);' % (arglist, blob))
        return 'CUresult tf_rs_%s(%s) {\n%s\n}\n' % (symbol, params_text, '\n'.join(body))
    if outs:
        body.append('  uint64_t tf_out[%d] = {};' % len(outs))
    if blob_out:
        body.append('  std::string tf_reply;')
    body.append('  CUresult tf_r = client().call(tf_fn, %s, %s, %d, %s, nullptr, 0, nullptr, %s);' %
                (arglist, 'tf_out' if outs else 'nullptr', len(outs), blob,
                 '&tf_reply' if blob_out else 'nullptr'))
    for i, (role, kind, ctype, name) in enumerate(outs):
        body.append('  *%s = wire::fromWire<%s>(tf_out[%d]);' % (name, pointee(ctype), i))
        if role == 'new' and kind in STUB_HANDLES:
            body.append('  if (tf_r == CUDA_SUCCESS) client().addHandle(Client::Handle::%s, *%s);' %
                        (kind, name))
    for (role, kind), (ctype, name) in zip(roles, params):
        if role == 'del' and kind in STUB_HANDLES:
            body.append('  if (tf_r == CUDA_SUCCESS) client().removeHandle(Client::Handle::%s, %s);' %
                        (kind, name))
    if blob_out:
        body.append('  if (tf_r == CUDA_SUCCESS && tf_reply.size() != sizeof(*%s)) return CUDA_ERROR_UNKNOWN;' %
                    blob_out)
        body.append('  if (tf_r == CUDA_SUCCESS) std::memcpy(%s, tf_reply.data(), sizeof(*%s));' %
                    (blob_out, blob_out))
    body.append('  return tf_r;')
    return 'CUresult tf_rs_%s(%s) {\n%s\n}\n' % (symbol, params_text, '\n'.join(body))


# ---- the worker's handlers ------------------------------------------------------------------

def handler(symbol, params_text, params, call, checks):
    roles = call['roles']
    body = []
    wire = 0  # the wire's scalar index of each by-value parameter
    index = {}
    for i, (role, kind) in enumerate(roles):
        if role in ('in', 'h', 'del', 'dptr'):
            index[i] = wire
            wire += 1
    if wire:
        body.append('  if (in.a.count < %d) return CUDA_ERROR_INVALID_VALUE;' % wire)
    for i, ((role, kind), (ctype, name)) in enumerate(zip(roles, params)):
        a = 'in.a.s[%d]' % index.get(i, 0)
        if role == 'h' and kind == 'Stream':
            body.append('  if (!s.resolveStreamIn(%s)) return CUDA_ERROR_INVALID_HANDLE;' % a)
        elif role in ('h', 'del'):
            kinds, err = checks[kind]
            body.append('  if (!s.resolveIn(%s, %s)) return %s;' %
                        (a, ', '.join('K::%s' % k for k in kinds), err))
        elif role == 'dptr':
            body.append('  if (!s.allocationFor(%s, 1)) return CUDA_ERROR_INVALID_VALUE;' % a)
    for (role, kind), (ctype, name) in zip(roles, params):
        if role == 'in_struct':
            t = pointee(ctype)
            body.append('  if (in.a.blob.size() != sizeof(%s)) return CUDA_ERROR_INVALID_VALUE;' % t)
            body.append('  %s tf_%s;' % (t, name))
            body.append('  std::memcpy(&tf_%s, in.a.blob.data(), sizeof(tf_%s));' % (name, name))
            body.append('  if (CUresult tf_e = structIn(s, tf_%s); tf_e != CUDA_SUCCESS) return tf_e;' % name)
    body.append('  auto tf_f = s.d().fn<CUresult (*)(%s)>(FnId::%s);' % (params_text, symbol))
    body.append('  if (!tf_f) return CUDA_ERROR_NOT_SUPPORTED;')
    args = []
    for i, ((role, kind), (ctype, name)) in enumerate(zip(roles, params)):
        if role in ('in', 'h', 'del', 'dptr'):
            args.append('wire::fromWire<%s>(in.a.s[%d])' % (ctype, index[i]))
        else:
            if role != 'in_struct':
                body.append('  %s tf_%s{};' % (pointee(ctype), name))
            args.append('&tf_%s' % name)
    body.append('  CUresult tf_r = tf_f(%s);' % ', '.join(args))
    for i, ((role, kind), (ctype, name)) in enumerate(zip(roles, params)):
        if role == 'del':
            body.append('  if (tf_r == CUDA_SUCCESS) s.forget(K::%s, in.a.s[%d]);' % (kind, index[i]))
    for (role, kind), (ctype, name) in zip(roles, params):
        if role == 'out':
            body.append('  out.put(wire::toWire(tf_%s));' % name)
        elif role == 'new':
            body.append('  putNew(s, out, tf_r, K::%s, wire::toWire(tf_%s));' % (kind, name))
        elif role == 'get':
            body.append('  out.put(known(s, K::%s, wire::toWire(tf_%s)));' % (kind, name))
        elif role == 'out_struct':
            body.append('  if (tf_r == CUDA_SUCCESS) {')
            body.append('    structOut(s, tf_%s);' % name)
            body.append('    out.blob.assign(reinterpret_cast<const char*>(&tf_%s), sizeof(tf_%s));' %
                        (name, name))
            body.append('  }')
    body.append('  return tf_r;')
    return ('CUresult wire_%s(Session& s, [[maybe_unused]] CallIn& in, '
            '[[maybe_unused]] CallOut& out) {\n%s\n}\n' % (symbol, '\n'.join(body)))


def generate(args):
    catalog, order = parse_catalog(args.catalog)
    kinds, checks = parse_kinds(args.kinds)
    calls = parse_calls(args.calls, catalog, kinds, checks)
    worker_hand = scan_hand_written(args.worker_sources, catalog, WORKER_HANDLER)
    stub_hand = scan_hand_written(args.stub_sources, catalog, STUB_FUNCTION)
    for symbol, call in calls.items():
        where = '%s:%d' % (args.calls, call['line'])
        if symbol in worker_hand:
            raise WireError('%s: %s is described here and hand-written at %s' %
                            (where, symbol, worker_hand[symbol][0]))
        if 'stub' in call['flags']:
            if symbol not in stub_hand:
                raise WireError('%s: %s is stub-only but the stub does not implement it' % (where, symbol))
        elif symbol in stub_hand:
            raise WireError('%s: %s is described here and hand-written at %s' %
                            (where, symbol, stub_hand[symbol][0]))

    head = '// Generated by src/remoting/gen_wire.py from src/remoting/wire_calls.txt. Do not edit.\n'
    forwarders = [head]
    handlers = [head]
    table = [head, '// TF_WIRE_ENTRY(symbol, disposition, handler)\n']
    declared = set()
    decls = []
    for symbol in order:
        params_text, params = catalog[symbol]
        params_text = '' if params_text == 'void' else params_text
        call = calls.get(symbol)
        if call and 'stub' not in call['flags']:
            forwarders.append(forwarder(symbol, params_text, params, call))
            handlers.append(handler(symbol, params_text, params, call, checks))
            decls.append('CUresult wire_%s(Session& s, CallIn& in, CallOut& out);\n' % symbol)
            table.append('TF_WIRE_ENTRY(%s, Generated, wire_%s)\n' % (symbol, symbol))
        elif call:
            table.append('TF_WIRE_ENTRY(%s, StubOnly, nullptr)\n' % symbol)
        elif symbol in worker_hand:
            first = worker_hand[symbol][1]
            if first not in declared:
                declared.add(first)
                decls.append('CUresult call_%s(Session& s, CallIn& in, CallOut& out);\n' % first)
            table.append('TF_WIRE_ENTRY(%s, HandWritten, call_%s)\n' % (symbol, first))
        else:
            table.append('TF_WIRE_ENTRY(%s, Unsupported, nullptr)\n' % symbol)
    table[2:2] = ['#ifdef TF_WIRE_DECLARE\n'] + decls + ['#else\n']
    table.append('#endif\n')
    os.makedirs(args.out, exist_ok=True)
    for name, text in (('wire_forwarders.inc', forwarders), ('wire_handlers.inc', handlers),
                       ('wire_table.inc', table)):
        path = os.path.join(args.out, name)
        new = ''.join(text)
        old = None
        if os.path.exists(path):
            with open(path) as f:
                old = f.read()
        if old != new:
            with open(path, 'w') as f:
                f.write(new)


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--catalog', required=True)
    p.add_argument('--calls', required=True)
    p.add_argument('--kinds', required=True, help='worker/handle_table.h (HandleKind)')
    p.add_argument('--worker-sources', nargs='*', default=[])
    p.add_argument('--stub-sources', nargs='*', default=[])
    p.add_argument('--out', required=True)
    args = p.parse_args()
    try:
        generate(args)
    except WireError as e:
        sys.stderr.write('gen_wire.py: error: %s\n' % e)
        return 1
    except OSError as e:
        sys.stderr.write('gen_wire.py: error: %s\n' % e)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
