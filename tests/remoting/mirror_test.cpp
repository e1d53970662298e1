// Mirrored host memory (src/remoting/mirror.h): what changed is found page by page against the
// last agreed contents; what comes in is merged byte by byte, so writes of the two sides to
// different bytes of one page both survive; malformed or out-of-range runs are refused.
#include "remoting/mirror.h"

#include <cstring>
#include <thread>
#include <vector>

#include <sys/mman.h>
#include <unistd.h>

#include "remoting/write_tracker.h"

#include <gtest/gtest.h>

namespace tf::remoting {
namespace {

// Two pages-aligned buffers standing for the client's and the worker's copy of one range.
struct Side {
  explicit Side(size_t n) : size(n) {
    void* p = mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    mem = static_cast<uint8_t*>(p);
  }
  ~Side() { munmap(mem, size); }
  uint8_t* mem;
  size_t size;
};

// Sends everything `from` changed to `to` (the same range at another address: offsets match).
uint64_t exchange(Mirror& from, Mirror& to) {
  std::vector<MirrorRun> runs;
  std::vector<uint8_t> bytes;
  uint64_t n = from.collect(runs, bytes);
  uint64_t at = 0;
  for (const MirrorRun& r : runs) {
    to.apply(to.base() + (r.addr - from.base()), bytes.data() + at, r.len);
    at += r.len;
  }
  EXPECT_EQ(at, n);
  return n;
}

TEST(Mirror, NothingChangedSendsNothing) {
  Side a(5 * 4096);
  Mirror m(a.mem, a.size);
  std::vector<MirrorRun> runs;
  std::vector<uint8_t> bytes;
  EXPECT_EQ(m.collect(runs, bytes), 0u);
  EXPECT_TRUE(runs.empty());
}

TEST(Mirror, ChangedPagesBecomeRunsAndArrive) {
  Side a(8 * 4096), b(8 * 4096);
  Mirror ma(a.mem, a.size), mb(b.mem, b.size);
  a.mem[10] = 1;              // page 0
  a.mem[4096 * 1 + 5] = 2;    // page 1: joins page 0's run
  a.mem[4096 * 5 + 4095] = 3; // page 5: a run of its own
  std::vector<MirrorRun> runs;
  std::vector<uint8_t> bytes;
  EXPECT_EQ(ma.collect(runs, bytes), 3u * 4096);
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(runs[0].addr, ma.base());
  EXPECT_EQ(runs[0].len, 2u * 4096);
  EXPECT_EQ(runs[1].addr, ma.base() + 5 * 4096);
  // Once taken, the same changes are not sent again.
  std::vector<MirrorRun> again;
  EXPECT_EQ(ma.collect(again, bytes), 0u);
  uint64_t at = 0;
  for (const MirrorRun& r : runs) {
    mb.apply(mb.base() + (r.addr - ma.base()), bytes.data() + at, r.len);
    at += r.len;
  }
  EXPECT_EQ(std::memcmp(a.mem, b.mem, a.size), 0);
  // The receiver's shadow took the bytes too: it has nothing to send back.
  EXPECT_EQ(exchange(mb, ma), 0u);
}

TEST(Mirror, WritesOfBothSidesToOnePageBothSurvive) {
  Side a(4096 + 100), b(4096 + 100); // a size that is not whole pages
  Mirror ma(a.mem, 4096 + 100), mb(b.mem, 4096 + 100);
  for (size_t i = 0; i < 4196; i += 2) a.mem[i] = 0xAA;  // host: even bytes
  for (size_t i = 1; i < 4196; i += 2) b.mem[i] = 0xBB;  // device: odd bytes
  exchange(mb, ma); // device -> host first: the host keeps its own even bytes
  for (size_t i = 0; i < 4196; ++i) ASSERT_EQ(a.mem[i], i % 2 ? 0xBB : 0xAA) << i;
  exchange(ma, mb); // then host -> device
  EXPECT_EQ(std::memcmp(a.mem, b.mem, 4196), 0);
  EXPECT_EQ(exchange(ma, mb) + exchange(mb, ma), 0u);
}

TEST(Mirror, SameByteChangedOnBothSidesTakesTheIncomingValue) {
  Side a(4096), b(4096);
  Mirror ma(a.mem, 4096), mb(b.mem, 4096);
  a.mem[7] = 1;
  b.mem[7] = 2;
  exchange(mb, ma); // a synchronisation brings the device's value
  EXPECT_EQ(a.mem[7], 2);
}

// With the kernel's write tracking (write_tracker.h), a collect compares only the pages written
// since the last one: a plain store and a read(2) into the memory are both seen, writes made
// before tracking began are found by the first (whole) collect, and nothing is sent twice.
// Where the kernel cannot track (before Linux 6.7, userfaultfd refused, TF_MIRROR_TRACKING=0)
// the test says so and is skipped: mirrors then compare everything, which the tests above check.
TEST(Mirror, TrackedWritesAreFoundWhateverWroteThem) {
  if (!WriteTracker::get())
    GTEST_SKIP() << "NOT TESTED HERE: the kernel's write tracking is not available (Linux < 6.7, "
                    "userfaultfd refused, or TF_MIRROR_TRACKING=0)";
  Side a(8 * 4096);
  a.mem[4096 + 1] = 9; // before the mirror exists
  Mirror m(a.mem, a.size, /*trackWrites=*/true);
  ASSERT_TRUE(m.tracked()) << "the kernel can track writes, but this mirror's memory is not tracked";
  std::vector<MirrorRun> runs;
  std::vector<uint8_t> bytes;
  ASSERT_EQ(m.collect(runs, bytes), 4096u);
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].addr, m.base() + 4096);
  a.mem[2 * 4096 + 3] = 1;
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  ASSERT_EQ(write(fds[1], "tensor", 6), 6);
  ASSERT_EQ(read(fds[0], a.mem + 5 * 4096 + 100, 6), 6); // the kernel writes it
  close(fds[0]);
  close(fds[1]);
  runs.clear();
  bytes.clear();
  ASSERT_EQ(m.collect(runs, bytes), 2u * 4096);
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(runs[0].addr, m.base() + 2 * 4096);
  EXPECT_EQ(runs[1].addr, m.base() + 5 * 4096);
  EXPECT_EQ(std::memcmp(bytes.data() + 4096 + 100, "tensor", 6), 0);
  runs.clear();
  EXPECT_EQ(m.collect(runs, bytes), 0u);
  // A page written with the same bytes it had is looked at but not sent.
  a.mem[2 * 4096 + 3] = 1;
  EXPECT_EQ(m.collect(runs, bytes), 0u);
  // Incoming bytes merged into the memory are not sent back either.
  Side b(8 * 4096);
  Mirror other(b.mem, b.size);
  b.mem[7 * 4096] = 4;
  exchange(other, m);
  EXPECT_EQ(a.mem[7 * 4096], 4);
  EXPECT_EQ(m.collect(runs, bytes), 0u);
}

// Written pages are left open for a while (protecting them again costs a TLB flush each
// time): while open, every write to them is still found; once more than 64 are open, one
// collect protects them all again, after which the kernel lists none until written anew.
TEST(Mirror, PagesLeftOpenStillShowEveryWriteAndAreProtectedInBatches) {
  WriteTracker* t = WriteTracker::get();
  if (!t)
    GTEST_SKIP() << "NOT TESTED HERE: the kernel's write tracking is not available (Linux < 6.7, "
                    "userfaultfd refused, or TF_MIRROR_TRACKING=0)";
  const uint64_t pages = 200;
  Side a(pages * 4096);
  Mirror m(a.mem, a.size, /*trackWrites=*/true);
  ASSERT_TRUE(m.tracked());
  std::vector<MirrorRun> runs;
  std::vector<uint8_t> bytes;
  m.collect(runs, bytes); // the first collect compares everything
  std::vector<std::pair<uint64_t, uint64_t>> open;
  for (uint8_t v = 1; v <= 3; ++v) { // the same open page, written again and again
    a.mem[3 * 4096] = v;
    runs.clear();
    bytes.clear();
    ASSERT_EQ(m.collect(runs, bytes), 4096u) << "write " << int(v);
    EXPECT_EQ(bytes[0], v);
  }
  open.clear();
  ASSERT_TRUE(t->written(m.base(), m.size(), &open, /*protectAgain=*/false));
  EXPECT_EQ(open.size(), 1u) << "page 3 is left open";
  for (uint64_t p = 10; p < 110; ++p) a.mem[p * 4096] = 7; // 100 pages: more than 64 open
  runs.clear();
  EXPECT_EQ(m.collect(runs, bytes), 100u * 4096);
  runs.clear();
  EXPECT_EQ(m.collect(runs, bytes), 0u); // this one protects the 101 open pages again
  open.clear();
  ASSERT_TRUE(t->written(m.base(), m.size(), &open, /*protectAgain=*/false));
  EXPECT_TRUE(open.empty()) << open.size() << " ranges still open";
  a.mem[3 * 4096] = 9; // a protected page again: its write is found as the first one was
  a.mem[150 * 4096] = 9;
  runs.clear();
  EXPECT_EQ(m.collect(runs, bytes), 2u * 4096);
}

// The worker's mirrors (gateOnFaults) skip the kernel's scan while the process has taken no page
// fault but those of the mirror's own merges, and still miss no write: a merged page written
// again (it is open: no fault) is compared without a scan, and a protected page written by
// another thread faults, so the next collect scans and finds it.
TEST(Mirror, FaultGateSkipsScansAndMissesNoWrite) {
  if (!WriteTracker::get())
    GTEST_SKIP() << "NOT TESTED HERE: the kernel's write tracking is not available (Linux < 6.7, "
                    "userfaultfd refused, or TF_MIRROR_TRACKING=0)";
  Side a(64 * 4096);
  Mirror m(a.mem, a.size, /*trackWrites=*/true, /*gateOnFaults=*/true);
  ASSERT_TRUE(m.tracked());
  std::vector<MirrorRun> runs;
  std::vector<uint8_t> bytes, pushed(4096, 0);
  runs.reserve(64);
  bytes.resize(64 * 4096); // its pages touched now, not during the collects
  bytes.clear();
  auto collect = [&] {
    runs.clear();
    bytes.clear();
    return m.collect(runs, bytes);
  };
  collect(); // compares everything
  collect(); // the first scan
  const uint64_t scans = m.scans();
  EXPECT_EQ(collect(), 0u);
  EXPECT_EQ(collect(), 0u);
  EXPECT_EQ(m.scans(), scans) << "nothing faulted, yet the collects scanned";
  EXPECT_GE(m.gatedLooks(), 2u);
  // A merge (the client's push) writes page 5: its faults are the merge's own.
  pushed[7] = 1;
  m.apply(m.base() + 5 * 4096, pushed.data(), pushed.size());
  EXPECT_EQ(a.mem[5 * 4096 + 7], 1);
  EXPECT_EQ(collect(), 0u) << "merged bytes are not sent back";
  // The device writes the merged page again: no fault (the page is open), found all the same.
  a.mem[5 * 4096 + 8] = 2;
  ASSERT_EQ(collect(), 4096u);
  EXPECT_EQ(runs[0].addr, m.base() + 5 * 4096);
  EXPECT_EQ(bytes[8], 2);
#if !defined(__SANITIZE_ADDRESS__)
  // (Under ASan its allocator hands out fresh pages where glibc reuses freed ones, and the
  // collect's own buffers fault: faults that are not the merge's, so the gate scans, which is
  // the safe answer. What must hold there too is checked around this: no write is missed.)
  EXPECT_EQ(m.scans(), scans) << "only merges faulted, yet a collect scanned";
#endif
  // Another thread writes a protected page: its fault is not the merge's, so the next collect
  // scans and finds it.
  std::thread([&] { a.mem[40 * 4096 + 1] = 3; }).join();
  ASSERT_EQ(collect(), 4096u);
  EXPECT_EQ(runs[0].addr, m.base() + 40 * 4096);
  EXPECT_EQ(bytes[1], 3);
  EXPECT_GT(m.scans(), scans);
}

TEST(MirrorSet, RefusesOverlapsAndChecksRuns) {
  Side a(4 * 4096);
  uint64_t base = reinterpret_cast<uint64_t>(a.mem);
  MirrorSet set;
  EXPECT_TRUE(set.empty());
  ASSERT_TRUE(set.add(base, 2 * 4096));
  EXPECT_FALSE(set.add(base + 4096, 4096)); // overlaps
  EXPECT_FALSE(set.add(base - 4096 * 0 + 100, 10));
  ASSERT_TRUE(set.add(base + 2 * 4096, 4096)); // adjacent is fine
  EXPECT_TRUE(set.contains(base + 10, 100));
  EXPECT_FALSE(set.contains(base + 2 * 4096 - 10, 20)); // spans two mirrors
  EXPECT_TRUE(set.check({{base, 2 * 4096}, {base + 2 * 4096, 1}}).isOk());
  EXPECT_EQ(set.check({{base + 3 * 4096, 1}}).code(), Code::DataLoss); // outside
  EXPECT_EQ(set.check({{base + 4096, 4097}}).code(), Code::DataLoss);  // past the end
  EXPECT_EQ(set.check({{base, 0}}).code(), Code::DataLoss);            // empty run
  uint64_t b = 0, n = 0;
  ASSERT_TRUE(set.base(base + 5000, &b, &n));
  EXPECT_EQ(b, base);
  EXPECT_EQ(n, 2u * 4096);
  EXPECT_TRUE(set.remove(base));
  EXPECT_FALSE(set.remove(base));
  EXPECT_FALSE(set.contains(base, 1));
  EXPECT_EQ(set.bases().size(), 1u);
}

TEST(MirrorRuns, RoundTripAndRejects) {
  Writer w;
  encodeMirrorRuns(w, {{0x1000, 10}, {0x5000, 20}});
  std::string_view blob(reinterpret_cast<const char*>(w.data()), w.size());
  std::vector<MirrorRun> runs;
  ASSERT_TRUE(decodeMirrorRuns(blob, 30, &runs).isOk());
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(runs[1].addr, 0x5000u);
  EXPECT_EQ(decodeMirrorRuns(blob, 31, &runs).code(), Code::DataLoss); // bulk does not match
  EXPECT_EQ(decodeMirrorRuns(blob.substr(0, blob.size() - 1), 30, &runs).code(), Code::DataLoss);
  Writer wrap;
  encodeMirrorRuns(wrap, {{~uint64_t(0) - 4, 10}});
  std::string_view wb(reinterpret_cast<const char*>(wrap.data()), wrap.size());
  EXPECT_EQ(decodeMirrorRuns(wb, 10, &runs).code(), Code::DataLoss); // wraps the address space
  Writer huge;
  huge.u32(kMaxMirrorRuns + 1);
  std::string_view hb(reinterpret_cast<const char*>(huge.data()), huge.size());
  EXPECT_EQ(decodeMirrorRuns(hb, 0, &runs).code(), Code::DataLoss);
}

} // namespace
} // namespace tf::remoting
