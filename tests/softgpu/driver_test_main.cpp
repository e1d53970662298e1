#include <cstdlib>
#include <filesystem>
#include <gtest/gtest.h>

int main(int argc, char** argv) {
  std::filesystem::create_directories(TF_TEST_STATE_DIR);
  setenv("TF_SOFTGPU_STATE_DIR", TF_TEST_STATE_DIR, 1);
  setenv("TF_SOFTGPU_DEVICES", "H100:1GiB,L4", 1);
  setenv("TF_SOFTGPU_NODE", "driver-test", 1);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
