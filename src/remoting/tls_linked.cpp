// tlsBackend() for binaries that link OpenSSL (tf_remoting: the worker, the CLI, tests and
// benchmarks): tls_transport.cpp's own functions.
#include "remoting/tls.h"

namespace tf::remoting {

Result<const TlsBackend*> tlsBackend() { return &opensslTlsBackend(); }

} // namespace tf::remoting
