#!/usr/bin/env python3
"""gen_wire.py on small inputs: a good description generates the three files with each
disposition; each malformed one fails with its own message and writes nothing.

  gen_wire_test.py path/to/gen_wire.py
"""
import os
import subprocess
import sys
import tempfile
import unittest

GEN = None

CATALOG = """// test catalog
TF_CU_FN(cuInit, cuInit, 2000, 0, cuInit, (unsigned int Flags), (Flags))
TF_CU_FN(cuStreamCreate, cuStreamCreate, 2000, 0, cuStreamCreate, (CUstream *phStream, unsigned int Flags), (phStream, Flags))
TF_CU_FN(cuStreamQuery, cuStreamQuery, 2000, 0, cuStreamQuery, (CUstream hStream), (hStream))
TF_CU_FN(cuStreamQuery_ptsz, cuStreamQuery, 7000, 1, cuStreamQuery, (CUstream hStream), (hStream))
TF_CU_FN(cuCtxSynchronize, cuCtxSynchronize, 2000, 0, cuCtxSynchronize, (void), ())
TF_CU_FN(cuMemFree_v2, cuMemFree, 3020, 0, cuMemFree_v2, (CUdeviceptr dptr), (dptr))
TF_CU_FN(cuEventQuery, cuEventQuery, 2000, 0, cuEventQuery, (CUevent hEvent), (hEvent))
TF_CU_FN(cuStreamGetCtx, cuStreamGetCtx, 9020, 0, cuStreamGetCtx, (CUstream hStream, CUcontext *pctx), (hStream, pctx))
TF_CU_FN(cuStreamDestroy_v2, cuStreamDestroy, 4000, 0, cuStreamDestroy_v2, (CUstream hStream), (hStream))
"""
SESSION = """class Session {
  enum class HandleKind : uint8_t {
    Context, Stream, Event, Function, Kernel,
    Count
  };
};
"""
GOOD_CALLS = """# a comment
cuStreamCreate    new:Stream in
cuStreamQuery     h:Stream          # and a comment after
cuStreamGetCtx    h:Stream get:Context
cuStreamDestroy_v2 del:Stream
cuCtxSynchronize
cuInit            stub
"""
WORKER = """TF_CALL(cuMemFree_v2) {
  return CUDA_SUCCESS;
}
"""
STUB = """CUresult tf_rs_cuInit(unsigned int flags) { return CUDA_SUCCESS; }
CUresult tf_rs_cuMemFree_v2(CUdeviceptr p) { return CUDA_SUCCESS; }
"""


class GenWire(unittest.TestCase):
    def run_gen(self, calls, worker=WORKER, stub=STUB, extra_worker=None, session=SESSION):
        d = tempfile.mkdtemp(prefix='gen-wire-test-')
        files = {'catalog.inc': CATALOG, 'wire_calls.txt': calls, 'calls_a.cpp': worker,
                 'api_a.cpp': stub, 'session.h': session}
        if extra_worker is not None:
            files['calls_b.cpp'] = extra_worker
        for name, text in files.items():
            with open(os.path.join(d, name), 'w') as f:
                f.write(text)
        workers = [os.path.join(d, 'calls_a.cpp')]
        if extra_worker is not None:
            workers.append(os.path.join(d, 'calls_b.cpp'))
        out = os.path.join(d, 'out')
        p = subprocess.run([sys.executable, GEN, '--catalog', os.path.join(d, 'catalog.inc'),
                            '--calls', os.path.join(d, 'wire_calls.txt'),
                            '--kinds', os.path.join(d, 'session.h'),
                            '--worker-sources'] + workers +
                           ['--stub-sources', os.path.join(d, 'api_a.cpp'), '--out', out],
                           capture_output=True, text=True)
        return p, out

    def fails(self, calls, message, **kw):
        p, out = self.run_gen(calls, **kw)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn(message, p.stderr)
        self.assertTrue(p.stderr.startswith('gen_wire.py: error: '), p.stderr)
        self.assertFalse(os.path.exists(out), 'nothing is written on an error')

    def test_good_description(self):
        p, out = self.run_gen(GOOD_CALLS)
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(os.path.join(out, 'wire_table.inc')) as f:
            table = f.read()
        for line in ('TF_WIRE_ENTRY(cuInit, StubOnly, nullptr)',
                     'TF_WIRE_ENTRY(cuStreamCreate, Generated, wire_cuStreamCreate)',
                     'TF_WIRE_ENTRY(cuStreamQuery, Generated, wire_cuStreamQuery)',
                     'TF_WIRE_ENTRY(cuStreamQuery_ptsz, Unsupported, nullptr)',
                     'TF_WIRE_ENTRY(cuCtxSynchronize, Generated, wire_cuCtxSynchronize)',
                     'TF_WIRE_ENTRY(cuMemFree_v2, HandWritten, call_cuMemFree_v2)',
                     'TF_WIRE_ENTRY(cuEventQuery, Unsupported, nullptr)'):
            self.assertIn(line, table)
        with open(os.path.join(out, 'wire_handlers.inc')) as f:
            handlers = f.read()
        # The created stream is recorded as the client's and the client gets its client value;
        # the queried one must be its own, and is resolved to the driver's value.
        self.assertIn('putNew(s, out, tf_r, K::Stream, wire::toWire(tf_phStream));', handlers)
        self.assertIn('if (!s.resolveStreamIn(in.a.s[0])) return CUDA_ERROR_INVALID_HANDLE;', handlers)
        # A context the call names in its output goes back as the client's value.
        self.assertIn('out.put(known(s, K::Context, wire::toWire(tf_pctx)));', handlers)
        # A destroyed handle: resolved, then forgotten by its driver value.
        self.assertIn('if (!s.resolveIn(in.a.s[0], K::Stream)) return CUDA_ERROR_INVALID_HANDLE;', handlers)
        self.assertIn('if (tf_r == CUDA_SUCCESS) s.forget(K::Stream, in.a.s[0]);', handlers)
        self.assertIn('if (in.a.count < 1) return CUDA_ERROR_INVALID_VALUE;', handlers)
        with open(os.path.join(out, 'wire_forwarders.inc')) as f:
            forwarders = f.read()
        self.assertIn('if (!phStream) return CUDA_ERROR_INVALID_VALUE;', forwarders)
        self.assertIn('client().addHandle(Client::Handle::Stream, *phStream)', forwarders)
        self.assertIn('perThreadCall(tf_fn, hStream);', forwarders)
        self.assertNotIn('tf_rs_cuInit', forwarders)

    def test_symbol_not_in_catalog(self):
        self.fails('cuStreamCreat new:Stream in\n', 'wire_calls.txt:1: cuStreamCreat is not a catalog symbol')

    def test_role_count(self):
        self.fails('cuStreamCreate new:Stream\n',
                   'cuStreamCreate has 2 parameters (CUstream * phStream, unsigned int Flags) but 1 roles')

    def test_unknown_role(self):
        self.fails('cuStreamQuery handle\n', 'unknown role "handle"')
        self.fails('cuStreamQuery own:Stream\n', 'unknown role "own:Stream"')

    def test_unknown_kind(self):
        self.fails('cuStreamQuery h:Strem\n', 'unknown handle kind "Strem" in "h:Strem"')
        # Pseudo-kinds only check ownership: nothing can be created or destroyed as one.
        self.fails('cuStreamCreate new:Func in\n', 'unknown handle kind "Func" in "new:Func"')
        # Kinds are Session's own: one it does not have is unknown.
        self.fails('cuStreamCreate new:Graph in\n', 'unknown handle kind "Graph" in "new:Graph"')

    def test_kinds_need_the_session(self):
        self.fails(GOOD_CALLS, 'no `enum class HandleKind { ... }`', session='class Session {};\n')

    def test_described_and_hand_written_on_the_worker(self):
        self.fails('cuMemFree_v2 dptr\n', 'cuMemFree_v2 is described here and hand-written at')

    def test_described_and_hand_written_in_the_stub(self):
        self.fails('cuInit in\n', 'cuInit is described here and hand-written at')

    def test_two_hand_written_handlers(self):
        self.fails(GOOD_CALLS, 'cuMemFree_v2 has two handlers', extra_worker=WORKER)

    def test_hand_written_symbol_not_in_catalog(self):
        self.fails(GOOD_CALLS, 'cuMemFrees is not a catalog symbol',
                   worker='TF_CALL(cuMemFrees) { return CUDA_SUCCESS; }\n')

    def test_described_twice(self):
        self.fails('cuStreamQuery h:Stream\ncuStreamQuery h:Stream\n',
                   'wire_calls.txt:2: cuStreamQuery is described twice (first at line 1)')

    def test_role_does_not_fit_parameter(self):
        self.fails('cuStreamCreate out:x in\n', 'unknown role "out:x"')
        self.fails('cuStreamCreate in in\n',
                   'role "in" does not fit parameter "CUstream * phStream"')
        self.fails('cuStreamQuery out\n', 'role "out" does not fit parameter "CUstream hStream"')
        self.fails('cuStreamQuery get:Stream\n', 'role "get:Stream" does not fit parameter "CUstream hStream"')

    def test_posted_call_with_outputs(self):
        self.fails('cuStreamCreate new:Stream in post\n', 'cuStreamCreate is posted: it cannot have outputs')

    def test_stub_only_needs_the_stub(self):
        self.fails('cuEventQuery stub\n', 'cuEventQuery is stub-only but the stub does not implement it')
        self.fails('cuInit in stub\n', 'cuInit is stub-only: it takes no roles')


if __name__ == '__main__':
    GEN = sys.argv.pop(1)
    unittest.main()
