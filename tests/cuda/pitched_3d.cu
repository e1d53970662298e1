// Pitched 2D and 3D memory: cudaMallocPitch + cudaMemcpy2D in every direction with offsets,
// cudaMalloc3D + cudaMemcpy3D with pitched pointers, extents and positions, cudaMemset2D/3D.
// Each result is compared byte for byte with a host model of the same operations.
#include <vector>

#include "check.h"

// Host model of a 2D copy between row-pitched buffers.
static void copy2d(unsigned char* dst, size_t dpitch, const unsigned char* src, size_t spitch,
                   size_t width, size_t height) {
  for (size_t y = 0; y < height; ++y) std::memcpy(dst + y * dpitch, src + y * spitch, width);
}

static void test2d(tf_test::Rng& rng) {
  const size_t W = 333, H = 47; // bytes per row, rows
  unsigned char* d = nullptr;
  size_t pitch = 0;
  CHECK(cudaMallocPitch(reinterpret_cast<void**>(&d), &pitch, W, H));
  EXPECT_EQ_INT(pitch, 512); // 333 bytes, rounded up to the 512-byte pitch alignment

  // Host image with its own pitch, uploaded whole.
  const size_t hp = W + 13;
  std::vector<unsigned char> host(hp * H), model(pitch * H, 0), back(hp * H);
  rng.fill(host.data(), host.size());
  CHECK(cudaMemset2D(d, pitch, 0, W, H));
  CHECK(cudaMemcpy2D(d, pitch, host.data(), hp, W, H, cudaMemcpyHostToDevice));
  copy2d(model.data(), pitch, host.data(), hp, W, H);

  // Sub-rectangle from the host at an offset (x=5, y=3) of size 100x20 from host (x=9, y=2).
  std::vector<unsigned char> patch(hp * H);
  rng.fill(patch.data(), patch.size());
  CHECK(cudaMemcpy2D(d + 3 * pitch + 5, pitch, patch.data() + 2 * hp + 9, hp, 100, 20,
                     cudaMemcpyHostToDevice));
  copy2d(model.data() + 3 * pitch + 5, pitch, patch.data() + 2 * hp + 9, hp, 100, 20);

  // Device to device inside the same allocation, non-overlapping: rows 30..39 <- rows 0..9,
  // shifted by 17 bytes.
  CHECK(cudaMemcpy2D(d + 30 * pitch + 17, pitch, d, pitch, 200, 10, cudaMemcpyDeviceToDevice));
  copy2d(model.data() + 30 * pitch + 17, pitch, model.data(), pitch, 200, 10);

  // Into a second pitched allocation with a different pitch, at an offset.
  unsigned char* e = nullptr;
  size_t epitch = 0;
  CHECK(cudaMallocPitch(reinterpret_cast<void**>(&e), &epitch, 2 * W, H));
  std::vector<unsigned char> emodel(epitch * H, 0);
  CHECK(cudaMemset2D(e, epitch, 0, 2 * W, H));
  CHECK(cudaMemcpy2D(e + 4 * epitch + 11, epitch, d + pitch, pitch, W, H - 5,
                     cudaMemcpyDeviceToDevice));
  copy2d(emodel.data() + 4 * epitch + 11, epitch, model.data() + pitch, pitch, W, H - 5);

  // Memset2D of a rectangle.
  CHECK(cudaMemset2D(d + 10 * pitch + 40, pitch, 0x5C, 50, 7));
  for (size_t y = 0; y < 7; ++y) std::memset(model.data() + (10 + y) * pitch + 40, 0x5C, 50);

  // Download whole device image with cudaMemcpy2D to a host pitch, and compare the W columns.
  CHECK(cudaMemcpy2D(back.data(), hp, d, pitch, W, H, cudaMemcpyDeviceToHost));
  std::vector<unsigned char> wantBack(hp * H);
  for (size_t y = 0; y < H; ++y) std::memcpy(wantBack.data() + y * hp, model.data() + y * pitch, W);
  for (size_t y = 0; y < H; ++y)
    if (!EXPECT_EQ_BYTES(back.data() + y * hp, wantBack.data() + y * hp, W, "2D D2H row")) break;

  // Download the second one to a host sub-rectangle (offset x=3, y=1), leaving the rest alone.
  std::vector<unsigned char> eback(epitch * H, 0xEE), ewant(epitch * H, 0xEE);
  CHECK(cudaMemcpy2D(eback.data() + epitch + 3, epitch, e, epitch, 2 * W - 3, H - 1,
                     cudaMemcpyDeviceToHost));
  copy2d(ewant.data() + epitch + 3, epitch, emodel.data(), epitch, 2 * W - 3, H - 1);
  EXPECT_EQ_BYTES(eback.data(), ewant.data(), eback.size(), "2D D2H at offset");

  // Default kind and a host-to-host 2D copy.
  std::vector<unsigned char> hh(hp * H, 0);
  CHECK(cudaMemcpy2D(hh.data(), hp, host.data(), hp, W, H, cudaMemcpyDefault));
  for (size_t y = 0; y < H; ++y)
    if (!EXPECT_EQ_BYTES(hh.data() + y * hp, host.data() + y * hp, W, "2D H2H")) break;

  // Width larger than a pitch is an error.
  EXPECT_ERR(cudaMemcpy2D(d, pitch, host.data(), hp, pitch + 1, 2, cudaMemcpyHostToDevice),
             cudaErrorInvalidPitchValue);
  (void)cudaGetLastError();
  CHECK(cudaFree(d));
  CHECK(cudaFree(e));
}

static void test3d(tf_test::Rng& rng) {
  const size_t W = 70, H = 9, D = 6; // bytes, rows, slices
  cudaExtent ext = make_cudaExtent(W, H, D);
  cudaPitchedPtr p;
  CHECK(cudaMalloc3D(&p, ext));
  EXPECT_TRUE(p.pitch >= W);
  EXPECT_EQ_INT(p.xsize, W);
  EXPECT_EQ_INT(p.ysize, H);
  const size_t slice = p.pitch * H;
  std::vector<unsigned char> model(slice * D, 0);
  CHECK(cudaMemset3D(p, 0, ext));

  // Host volume with its own pitch (W+6) and height (H+2): upload a box at offsets.
  const size_t hp = W + 6, hh = H + 2, hd = D + 1;
  std::vector<unsigned char> host(hp * hh * hd);
  rng.fill(host.data(), host.size());
  cudaMemcpy3DParms c = {};
  c.srcPtr = make_cudaPitchedPtr(host.data(), hp, W + 6, hh);
  c.srcPos = make_cudaPos(2, 1, 1);
  c.dstPtr = p;
  c.dstPos = make_cudaPos(3, 2, 1);
  c.extent = make_cudaExtent(50, 6, 4);
  c.kind = cudaMemcpyHostToDevice;
  CHECK(cudaMemcpy3D(&c));
  for (size_t z = 0; z < 4; ++z)
    for (size_t y = 0; y < 6; ++y)
      std::memcpy(model.data() + (z + 1) * slice + (y + 2) * p.pitch + 3,
                  host.data() + (z + 1) * hp * hh + (y + 1) * hp + 2, 50);

  // Memset3D of an inner box.
  cudaPitchedPtr inner = p;
  inner.ptr = static_cast<char*>(p.ptr) + 2 * slice + 1 * p.pitch + 10;
  CHECK(cudaMemset3D(inner, 0x77, make_cudaExtent(20, 3, 2)));
  for (size_t z = 0; z < 2; ++z)
    for (size_t y = 0; y < 3; ++y)
      std::memset(model.data() + (z + 2) * slice + (y + 1) * p.pitch + 10, 0x77, 20);

  // Device to device into a second volume, at an offset.
  cudaPitchedPtr q;
  CHECK(cudaMalloc3D(&q, ext));
  CHECK(cudaMemset3D(q, 0x11, ext));
  const size_t qslice = q.pitch * H;
  std::vector<unsigned char> qmodel(qslice * D, 0);
  for (size_t z = 0; z < D; ++z)
    for (size_t y = 0; y < H; ++y) std::memset(qmodel.data() + z * qslice + y * q.pitch, 0x11, W);
  cudaMemcpy3DParms c2 = {};
  c2.srcPtr = p;
  c2.srcPos = make_cudaPos(1, 1, 1);
  c2.dstPtr = q;
  c2.dstPos = make_cudaPos(0, 0, 2);
  c2.extent = make_cudaExtent(W - 1, H - 1, D - 2);
  c2.kind = cudaMemcpyDeviceToDevice;
  CHECK(cudaMemcpy3D(&c2));
  for (size_t z = 0; z < D - 2; ++z)
    for (size_t y = 0; y < H - 1; ++y)
      std::memcpy(qmodel.data() + (z + 2) * qslice + y * q.pitch,
                  model.data() + (z + 1) * slice + (y + 1) * p.pitch + 1, W - 1);

  // Download both volumes to tightly packed host buffers and compare.
  for (int which = 0; which < 2; ++which) {
    cudaPitchedPtr v = which ? q : p;
    const auto& m = which ? qmodel : model;
    std::vector<unsigned char> back(W * H * D, 0xCD), want(W * H * D);
    cudaMemcpy3DParms d = {};
    d.srcPtr = v;
    d.dstPtr = make_cudaPitchedPtr(back.data(), W, W, H);
    d.extent = ext;
    d.kind = cudaMemcpyDeviceToHost;
    CHECK(cudaMemcpy3D(&d));
    for (size_t z = 0; z < D; ++z)
      for (size_t y = 0; y < H; ++y)
        std::memcpy(want.data() + (z * H + y) * W, m.data() + z * v.pitch * H + y * v.pitch, W);
    EXPECT_EQ_BYTES(back.data(), want.data(), back.size(), which ? "3D volume q" : "3D volume p");
  }

  // Async 3D copy on a stream (D2H of one slice at z=2).
  cudaStream_t s;
  CHECK(cudaStreamCreate(&s));
  std::vector<unsigned char> sl(W * H, 0), slWant(W * H);
  cudaMemcpy3DParms a = {};
  a.srcPtr = p;
  a.srcPos = make_cudaPos(0, 0, 2);
  a.dstPtr = make_cudaPitchedPtr(sl.data(), W, W, H);
  a.extent = make_cudaExtent(W, H, 1);
  a.kind = cudaMemcpyDeviceToHost;
  CHECK(cudaMemcpy3DAsync(&a, s));
  CHECK(cudaStreamSynchronize(s));
  for (size_t y = 0; y < H; ++y) std::memcpy(slWant.data() + y * W, model.data() + 2 * slice + y * p.pitch, W);
  EXPECT_EQ_BYTES(sl.data(), slWant.data(), sl.size(), "3D async slice");
  CHECK(cudaStreamDestroy(s));

  CHECK(cudaFree(p.ptr));
  CHECK(cudaFree(q.ptr));
}

int main() {
  TF_CHECK_VGPU(); // in a _limited run: the limiter is there (check.h)
  tf_test::Rng rng(777);
  test2d(rng);
  test3d(rng);
  return tf_test::summary("pitched_3d");
}
