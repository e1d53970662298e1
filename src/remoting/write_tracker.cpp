#include "remoting/write_tracker.h"

#include <cstdlib>
#include <cstring>

#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/log.h"

// Linux 6.7 ABI, newer than the distribution's headers.
#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED (1 << 13)
#endif
#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC (1 << 15)
#endif

namespace tf::remoting {
namespace {

struct PageRegion {
  uint64_t start, end, categories;
};
struct PmScanArg {
  uint64_t size, flags, start, end, walkEnd, vec, vecLen, maxPages, categoryInverted,
      categoryMask, categoryAnyofMask, returnMask;
};
constexpr unsigned long kPagemapScan = _IOWR('f', 16, PmScanArg);
constexpr uint64_t kPageIsWritten = 1 << 1;
constexpr uint64_t kScanWpMatching = 1 << 0;
constexpr uint64_t kScanCheckWpAsync = 1 << 1;
constexpr uint64_t kPage = 4096;

} // namespace

WriteTracker* WriteTracker::get() {
  static WriteTracker* t = open();
  return t;
}

WriteTracker* WriteTracker::open() {
  if (const char* v = getenv("TF_MIRROR_TRACKING"); v && std::strcmp(v, "0") == 0) return nullptr;
  int uffd = static_cast<int>(syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK));
  if (uffd < 0) return nullptr; // not permitted, or no userfaultfd
  uffdio_api api{UFFD_API, UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED, 0};
  int pagemap = -1;
  if (ioctl(uffd, UFFDIO_API, &api) == 0) pagemap = ::open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  if (pagemap < 0) {
    ::close(uffd);
    return nullptr;
  }
  auto* t = new WriteTracker(uffd, pagemap);
  if (!t->selfTest()) { // the constants or the kernel do not behave as expected: do without
    TF_LOG(Info, "mirrors: the kernel's write tracking failed its self-test; comparing whole ranges");
    ::close(uffd);
    ::close(pagemap);
    delete t;
    return nullptr;
  }
  return t;
}

// Four pages: a user write to one and a system-call write to another must be the only pages
// reported, once.
bool WriteTracker::selfTest() {
  const uint64_t n = 4 * kPage;
  void* m = mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) return false;
  auto* p = static_cast<uint8_t*>(m);
  uint64_t base = reinterpret_cast<uint64_t>(p);
  bool ok = track(base, n);
  if (ok) {
    p[kPage + 7] = 1;
    int fds[2];
    ok = pipe2(fds, O_CLOEXEC) == 0;
    if (ok) {
      ok = write(fds[1], "tf", 2) == 2 && read(fds[0], p + 3 * kPage, 2) == 2;
      ::close(fds[0]);
      ::close(fds[1]);
    }
  }
  std::vector<std::pair<uint64_t, uint64_t>> got, again;
  ok = ok && written(base, n, &got) && written(base, n, &again) && again.empty() &&
       got.size() == 2 && got[0] == std::make_pair(base + kPage, base + 2 * kPage) &&
       got[1] == std::make_pair(base + 3 * kPage, base + 4 * kPage);
  untrack(base, n);
  munmap(m, n);
  return ok;
}

bool WriteTracker::track(uint64_t base, uint64_t size) {
  if (base % kPage || size == 0) return false;
  size = (size + kPage - 1) & ~(kPage - 1);
  uffdio_register reg{{base, size}, UFFDIO_REGISTER_MODE_WP, 0};
  if (ioctl(uffd_, UFFDIO_REGISTER, &reg) != 0) return false;
  uffdio_writeprotect wp{{base, size}, UFFDIO_WRITEPROTECT_MODE_WP};
  if (ioctl(uffd_, UFFDIO_WRITEPROTECT, &wp) != 0) {
    untrack(base, size);
    return false;
  }
  return true;
}

void WriteTracker::untrack(uint64_t base, uint64_t size) {
  size = (size + kPage - 1) & ~(kPage - 1);
  uffdio_range range{base, size};
  (void)ioctl(uffd_, UFFDIO_UNREGISTER, &range);
}

bool WriteTracker::written(uint64_t base, uint64_t size,
                           std::vector<std::pair<uint64_t, uint64_t>>* out, bool protectAgain) {
  const uint64_t end = base + ((size + kPage - 1) & ~(kPage - 1));
  PageRegion vec[64];
  for (uint64_t at = base; at < end;) {
    PmScanArg a{sizeof(PmScanArg), (protectAgain ? kScanWpMatching : 0) | kScanCheckWpAsync, at, end, 0,
                reinterpret_cast<uint64_t>(vec), 64, 0, 0, kPageIsWritten, 0, kPageIsWritten};
    long n = ioctl(pagemap_, kPagemapScan, &a);
    if (n < 0) return false;
    for (long i = 0; i < n; ++i) out->emplace_back(vec[i].start, vec[i].end);
    if (a.walkEnd <= at) return false; // no progress: do not loop forever
    at = a.walkEnd;
  }
  return true;
}

namespace {
uint64_t faults(int who) {
  rusage u{};
  if (getrusage(who, &u) != 0) return ~uint64_t(0); // unknown (the callers then scan)
  return static_cast<uint64_t>(u.ru_minflt) + static_cast<uint64_t>(u.ru_majflt);
}
} // namespace

uint64_t WriteTracker::processFaults() { return faults(RUSAGE_SELF); }
uint64_t WriteTracker::threadFaults() { return faults(RUSAGE_THREAD); }

} // namespace tf::remoting
