// libtensor-fusion-tls.so: the TLS transport for the client stub, which loads it only when a
// tls:// worker is used (stub/tls_loaded.cpp), so that the stub itself never needs OpenSSL.
#include "remoting/tls.h"

extern "C" __attribute__((visibility("default"))) const tf::remoting::TlsBackend*
tfRemotingTlsBackend() {
  return &tf::remoting::opensslTlsBackend();
}
