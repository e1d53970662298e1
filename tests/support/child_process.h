// Test support: run a program as a child process with extra environment, its stdout and
// stderr captured to a file.
//
//   Child c = spawnChild("/path/prog", {"arg"}, {{"TF_VGPU_REGION", path}}, outFile);
//   EXPECT_EQ(c.wait(), 0) << c.output();
#pragma once

#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <map>
#include <spawn.h>
#include <string>
#include <sys/wait.h>
#include <vector>

extern char** environ;

namespace tf::test {

struct Child {
  pid_t pid = -1;
  std::filesystem::path out;
  // Exit code, or 128 + signal.
  int wait() {
    int st = 0;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  }
  std::string output() const {
    std::ifstream in(out);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  }
};

// `env` entries override the parent's; an empty value removes the variable.
inline Child spawnChild(const std::string& program, std::vector<std::string> args,
                        const std::map<std::string, std::string>& env,
                        const std::filesystem::path& out) {
  std::vector<std::string> envStrings;
  for (char** e = environ; *e; ++e) {
    std::string kv(*e);
    if (!env.count(kv.substr(0, kv.find('=')))) envStrings.push_back(kv);
  }
  for (auto& [k, v] : env)
    if (!v.empty()) envStrings.push_back(k + "=" + v);
  std::vector<char*> envp, argv;
  for (auto& s : envStrings) envp.push_back(s.data());
  envp.push_back(nullptr);
  args.insert(args.begin(), program);
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  Child c;
  c.out = out;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, c.out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  if (posix_spawn(&c.pid, program.c_str(), &fa, nullptr, argv.data(), envp.data()) != 0) c.pid = -1;
  posix_spawn_file_actions_destroy(&fa);
  return c;
}

} // namespace tf::test
