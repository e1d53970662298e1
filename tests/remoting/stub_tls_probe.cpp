// Loads a client stub (argv[1]), points it at a worker address (argv[2], "-" for none) and calls cuInit, then
// says whether OpenSSL is in the process: "cuInit=<code> libssl=<loaded|absent>". Nothing
// listens at the addresses the tests give, so cuInit always fails; what the tests check is
// why (the stub's log, on stderr) and whether TLS was loaded for it. Exits 0 when it ran.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>

namespace {

bool libsslLoaded() {
  FILE* maps = fopen("/proc/self/maps", "r");
  if (!maps) return false;
  char line[4096];
  bool found = false;
  while (!found && fgets(line, sizeof line, maps)) found = strstr(line, "/libssl.so") != nullptr;
  fclose(maps);
  return found;
}

} // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s STUB_LIBCUDA WORKER_ADDRESS\n", argv[0]);
    return 2;
  }
  // "-": no worker address (the stub asks the operator's URL, if the environment has one).
  if (strcmp(argv[2], "-") == 0) unsetenv("TF_REMOTE_WORKER");
  else setenv("TF_REMOTE_WORKER", argv[2], 1);
  void* stub = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (!stub) {
    fprintf(stderr, "cannot load %s: %s\n", argv[1], dlerror());
    return 2;
  }
  if (libsslLoaded()) {
    printf("libssl is loaded before cuInit: the stub links OpenSSL\n");
    return 1;
  }
  using CuInit = int (*)(unsigned);
  auto cuInit = reinterpret_cast<CuInit>(dlsym(stub, "cuInit"));
  if (!cuInit) {
    fprintf(stderr, "%s has no cuInit\n", argv[1]);
    return 2;
  }
  int r = cuInit(0);
  printf("cuInit=%d libssl=%s\n", r, libsslLoaded() ? "loaded" : "absent");
  return 0;
}
