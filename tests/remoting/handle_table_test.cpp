// The worker's handle table (worker/handle_table.h): client values and driver values, both ways,
// in the identity mode and remapped.
#include <gtest/gtest.h>

#include <set>

#include "remoting/worker/handle_table.h"

namespace tf::remoting {
namespace {

using K = HandleKind;
using Mode = HandleTable::Mode;

TEST(HandleTable, IdentityClientValuesAreTheDrivers) {
  HandleTable t(Mode::Identity);
  EXPECT_EQ(t.expose(K::Stream, 0x7f001000), 0x7f001000u);
  EXPECT_EQ(t.resolve(K::Stream, 0x7f001000), 0x7f001000u);
  EXPECT_EQ(t.clientValue(K::Stream, 0x7f001000), 0x7f001000u);
  // Per kind: a stream is no event.
  EXPECT_FALSE(t.resolve(K::Event, 0x7f001000));
  EXPECT_FALSE(t.resolve(K::Stream, 0x7f002000));
  t.forget(K::Stream, 0x7f001000);
  EXPECT_FALSE(t.resolve(K::Stream, 0x7f001000));
  EXPECT_EQ(t.count(K::Stream), 0u);
}

TEST(HandleTable, RemappedClientValuesAreNeverDriverValues) {
  HandleTable t(Mode::Remapped, 0x1234);
  std::set<uint64_t> seen;
  for (uint64_t d = 1; d <= 1000; ++d) {
    uint64_t driver = 0x7f0000000000 + d * 64;
    uint64_t client = t.expose(K::Stream, driver);
    EXPECT_NE(client, driver);
    EXPECT_GT(client, 2u) << "never 0 or a special stream";
    EXPECT_NE(client >> 63, 0u) << "the top bit, which no driver pointer has";
    EXPECT_TRUE(seen.insert(client).second) << "two handles, one value";
    EXPECT_EQ(t.resolve(K::Stream, client), driver);
    EXPECT_EQ(t.clientValue(K::Stream, driver), client);
    EXPECT_FALSE(t.resolve(K::Stream, driver)) << "a driver value is no client value";
    EXPECT_EQ(t.expose(K::Stream, driver), client) << "the same handle, the same value";
  }
  EXPECT_EQ(t.count(K::Stream), 1000u);
  EXPECT_EQ(t.drivers(K::Stream).size(), 1000u);
  EXPECT_EQ(t.expose(K::Stream, 0), 0u) << "no handle stays no handle";
}

TEST(HandleTable, RemappedTablesGiveDifferentValues) {
  HandleTable a(Mode::Remapped, 1 << 20), b(Mode::Remapped, 7 << 20);
  EXPECT_NE(a.expose(K::Context, 0x5000), b.expose(K::Context, 0x5000));
}

TEST(HandleTable, TextureAndSurfaceObjectsKeepTheDriversValues) {
  // Kernels read them as they are: they are device-visible, like device pointers.
  HandleTable t(Mode::Remapped, 99);
  EXPECT_EQ(t.expose(K::TexObject, 3), 3u);
  EXPECT_EQ(t.expose(K::SurfObject, 4), 4u);
  EXPECT_EQ(t.resolve(K::TexObject, 3), 3u);
}

TEST(HandleTable, AdoptedHandlesKeepTheirClientValues) {
  // A session re-created on another worker: the new driver's handle, the old client value.
  HandleTable t(Mode::Remapped, 5);
  uint64_t client = t.expose(K::Module, 0x1000);
  HandleTable moved(Mode::Remapped, 6);
  ASSERT_TRUE(moved.adopt(K::Module, client, 0x2000));
  EXPECT_EQ(moved.resolve(K::Module, client), 0x2000u);
  EXPECT_FALSE(moved.adopt(K::Module, client, 0x3000)) << "the client value is taken";
  EXPECT_FALSE(moved.adopt(K::Module, client + 16, 0x2000)) << "the driver value is taken";
  EXPECT_FALSE(moved.adopt(K::Module, 0, 0x4000));
  // New handles never take an adopted value.
  for (int i = 0; i < 100; ++i) EXPECT_NE(moved.expose(K::Module, 0x5000 + i * 8), client);
}

TEST(HandleTable, ForgottenHandlesGoBothWays) {
  HandleTable t(Mode::Remapped, 11);
  uint64_t c = t.expose(K::Graph, 0x9000);
  t.forget(K::Graph, 0x9000);
  EXPECT_FALSE(t.resolve(K::Graph, c));
  EXPECT_FALSE(t.clientValue(K::Graph, 0x9000));
  EXPECT_NE(t.expose(K::Graph, 0x9000), c) << "a new handle at the old address is a new handle";
  t.clear();
  EXPECT_EQ(t.count(K::Graph), 0u);
}

} // namespace
} // namespace tf::remoting
