#include <cstdlib>
#include <filesystem>
#include <gtest/gtest.h>
#include <string>
#include <unistd.h>

int main(int argc, char** argv) {
  // A device state of its own: CTest runs these tests as concurrent processes, and device
  // memory is counted device-wide across processes, as on a GPU.
  const std::string dir = std::string(TF_TEST_STATE_DIR) + "/" + std::to_string(getpid());
  std::filesystem::create_directories(dir);
  setenv("TF_SOFTGPU_STATE_DIR", dir.c_str(), 1);
  setenv("TF_SOFTGPU_DEVICES", "H100:1GiB,L4", 1);
  setenv("TF_SOFTGPU_NODE", "driver-test", 1);
  ::testing::InitGoogleTest(&argc, argv);
  int rc = RUN_ALL_TESTS();
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  return rc;
}
