// A fresh soft GPU state directory for one test: made under /tmp, set as TF_SOFTGPU_STATE_DIR,
// and removed with the files the test's processes left in it.
//
//   tf::testing::StateDir state("nvml-test");   // TF_SOFTGPU_STATE_DIR=/tmp/tf-nvml-test-XXXXXX
#pragma once

#include <cstdlib>
#include <dirent.h>
#include <string>
#include <unistd.h>

namespace tf::testing {

class StateDir {
public:
  explicit StateDir(const std::string& name) {
    std::string pattern = "/tmp/tf-" + name + "-XXXXXX";
    if (mkdtemp(pattern.data())) path_ = pattern;
    if (!path_.empty()) setenv("TF_SOFTGPU_STATE_DIR", path_.c_str(), 1);
  }
  ~StateDir() {
    if (path_.empty()) return;
    if (DIR* d = opendir(path_.c_str())) {
      while (dirent* e = readdir(d))
        if (e->d_name[0] != '.') unlink((path_ + "/" + e->d_name).c_str());
      closedir(d);
    }
    rmdir(path_.c_str());
  }
  StateDir(const StateDir&) = delete;
  StateDir& operator=(const StateDir&) = delete;

  const std::string& path() const { return path_; } // empty if it could not be made

private:
  std::string path_;
};

} // namespace tf::testing
