// tlsBackend() for the client stub: OpenSSL only when a tls:// worker is used. The TLS
// transport is libtensor-fusion-tls.so in the stub's own folder (lib/remote/), loaded on first
// use; a client image without OpenSSL works over tcp:// and shm:// and gets a clear error for
// tls://.
#include <dlfcn.h>

#include "remoting/tls.h"

namespace tf::remoting {
namespace {

constexpr char kTlsModule[] = "libtensor-fusion-tls.so";

Result<const TlsBackend*> loadTlsModule() {
  Dl_info self{};
  if (!dladdr(reinterpret_cast<void*>(&loadTlsModule), &self) || !self.dli_fname)
    return unavailable(std::string("cannot find the stub's own folder to load ") + kTlsModule);
  std::string path = self.dli_fname;
  size_t slash = path.rfind('/');
  path = (slash == std::string::npos ? std::string() : path.substr(0, slash + 1)) + kTlsModule;
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
  if (!handle)
    return unavailable("a tls:// worker needs " + path + " and OpenSSL 3 (libssl.so.3): " +
                       dlerror());
  using BackendFn = const TlsBackend* (*)();
  auto fn = reinterpret_cast<BackendFn>(dlsym(handle, "tfRemotingTlsBackend"));
  const TlsBackend* backend = fn ? fn() : nullptr;
  if (!backend || backend->size != sizeof(TlsBackend))
    return failedPrecondition(path + " is not the TLS module of this stub's build");
  return backend;
}

} // namespace

Result<const TlsBackend*> tlsBackend() {
  static const Result<const TlsBackend*> loaded = loadTlsModule(); // once: loaded or why not
  return loaded;
}

} // namespace tf::remoting
