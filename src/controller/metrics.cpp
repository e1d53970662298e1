#include "controller/metrics.h"

#include <sstream>

namespace tf::controller {

void Metrics::reconciled(const std::string& controller, bool ok) {
  std::lock_guard lock(mu_);
  ++reconciles_[{controller, ok}];
}

void Metrics::setLeader(bool leader) {
  std::lock_guard lock(mu_);
  leader_ = leader;
}

void Metrics::addGauge(std::string name, std::string labels, std::function<double()> read) {
  std::lock_guard lock(mu_);
  gauges_.push_back({std::move(name), std::move(labels), std::move(read)});
}

void Metrics::addCounter(std::string name, std::string labels, std::function<double()> read) {
  std::lock_guard lock(mu_);
  gauges_.push_back({std::move(name), std::move(labels), std::move(read), true});
}

long Metrics::reconciles(const std::string& controller, bool ok) const {
  std::lock_guard lock(mu_);
  auto it = reconciles_.find({controller, ok});
  return it == reconciles_.end() ? 0 : it->second;
}

std::string Metrics::render() const {
  std::lock_guard lock(mu_);
  std::ostringstream out;
  out << "# HELP tensor_fusion_controller_reconcile_total Reconciles by controller and result.\n"
         "# TYPE tensor_fusion_controller_reconcile_total counter\n";
  for (const auto& [key, n] : reconciles_)
    out << "tensor_fusion_controller_reconcile_total{controller=\"" << key.first << "\",result=\""
        << (key.second ? "success" : "error") << "\"} " << n << "\n";
  out << "# HELP tensor_fusion_controller_leader Whether this replica leads.\n"
         "# TYPE tensor_fusion_controller_leader gauge\n"
      << "tensor_fusion_controller_leader " << (leader_ ? 1 : 0) << "\n";
  std::string last;
  for (const auto& g : gauges_) {
    if (g.name != last) out << "# TYPE " << g.name << (g.counter ? " counter\n" : " gauge\n");
    last = g.name;
    out << g.name << "{" << g.labels << "} " << g.read() << "\n";
  }
  return out.str();
}

}  // namespace tf::controller
