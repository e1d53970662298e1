// The controller's Prometheus metrics, served on /metrics in the text exposition format:
//   tensor_fusion_controller_reconcile_total{controller="gpupool",result="success|error"}
//   tensor_fusion_controller_queue_depth{controller="gpupool"}
//   tensor_fusion_controller_leader 0|1
//   tensor_fusion_controller_cache_objects{kind="GPU"}
#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <utility>

namespace tf::controller {

class Metrics {
public:
  void reconciled(const std::string& controller, bool ok);
  void setLeader(bool leader);
  // Gauges and counters read at scrape time (queue depths, cache sizes; counts kept elsewhere).
  void addGauge(std::string name, std::string labels, std::function<double()> read);
  void addCounter(std::string name, std::string labels, std::function<double()> read);

  std::string render() const;
  long reconciles(const std::string& controller, bool ok) const;

private:
  mutable std::mutex mu_;
  std::map<std::pair<std::string, bool>, long> reconciles_;
  bool leader_ = false;
  struct Gauge {
    std::string name, labels;
    std::function<double()> read;
    bool counter = false;
  };
  std::vector<Gauge> gauges_;
};

}  // namespace tf::controller
