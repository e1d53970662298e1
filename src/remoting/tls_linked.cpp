// tlsBackend() for binaries that link OpenSSL (tf_remoting: the worker, the CLI, tests and
// benchmarks): tls_transport.cpp's own functions.
#include "remoting/tls.h"

#include <openssl/crypto.h>

namespace tf::remoting {

Result<const TlsBackend*> tlsBackend() { return &opensslTlsBackend(); }

void tlsThreadDone() { OPENSSL_thread_stop(); }

} // namespace tf::remoting
