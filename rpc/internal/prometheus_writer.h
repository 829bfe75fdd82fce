// PrometheusWriter: builds the Prometheus text exposition format, version
// 0.0.4 (Content-Type: text/plain; version=0.0.4).
//
// Samples are buffered per family and written at ToString(), each family once
// with its # HELP and # TYPE lines and all its samples together, in the order
// the families were first declared. So several writers of one family (two
// servers, each in its own collector) merge: declare the family again and add
// samples; its first HELP wins.
//
//   PrometheusWriter w;
//   w.Family("nprpc_server_connections", PrometheusWriter::kGauge, "Open connections.");
//   w.Sample({{"server", "127.0.0.1:8000"}}, 3);
//   w.Family("nprpc_server_latency_seconds", PrometheusWriter::kSummary, "Latency.");
//   w.Summary({{"method", "pkg.Echo/Echo"}}, {{0.5, 0.001}, {0.99, 0.004}}, 12.5, 10000);
//   std::string text = w.ToString();
//
// Checks (a failing family or sample is left out, so the text stays valid,
// and status() reports the first problem): metric names match
// [a-zA-Z_:][a-zA-Z0-9_:]*, label names [a-zA-Z_][a-zA-Z0-9_]* and do not
// start with "__"; a counter's name ends in "_total" and no other type's does
// (promtool's lint); "quantile" is reserved for summaries; a family keeps its
// first type; a label set appears once per family; no label twice in a sample.
// Label values escape \, " and newline; HELP escapes \ and newline.
//
// Thread safety: not thread-safe; one thread uses a writer at a time.
#ifndef RPC_INTERNAL_PROMETHEUS_WRITER_H_
#define RPC_INTERNAL_PROMETHEUS_WRITER_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace nprpc {

class PrometheusWriter {
 public:
  enum Type { kCounter, kGauge, kSummary, kUntyped };
  // Label name -> value, in the order written.
  using Labels = std::vector<std::pair<absl::string_view, absl::string_view>>;
  // (quantile in [0, 1], value)
  using Quantiles = std::vector<std::pair<double, double>>;

  PrometheusWriter() = default;
  PrometheusWriter(const PrometheusWriter&) = delete;
  PrometheusWriter& operator=(const PrometheusWriter&) = delete;

  // Makes `name` the family that the next samples go to, declaring it at its
  // first call.
  void Family(absl::string_view name, Type type, absl::string_view help);

  // A counter, gauge or untyped sample of the current family.
  void Sample(const Labels& labels, double value);
  // A summary of the current family: one sample per quantile (label
  // quantile="q"), then <name>_sum and <name>_count.
  void Summary(const Labels& labels, const Quantiles& quantiles, double sum, int64_t count);

  // The exposition text.
  std::string ToString() const;
  // OK, or the first problem met (what was left out).
  absl::Status status() const { return status_; }

  // Exposed for tests.
  static bool IsValidMetricName(absl::string_view name);
  static bool IsValidLabelName(absl::string_view name);
  static std::string EscapeLabelValue(absl::string_view value);
  static std::string EscapeHelp(absl::string_view help);
  // Go-compatible float text: integers without exponent up to 1e15, NaN,
  // +Inf, -Inf, else the shortest round-trip form.
  static std::string FormatValue(double value);

 private:
  struct FamilyData {
    std::string name;
    Type type = kUntyped;
    std::string help;
    std::string samples;  // lines, each ending in \n
    absl::flat_hash_set<std::string> label_sets;
  };

  // Appends `{labels,extra}` (nothing when both are empty) to `out`; false
  // (and status_) on a bad label.
  bool AppendLabels(const Labels& labels, absl::string_view extra_name,
                    absl::string_view extra_value, std::string& out);
  // The current family, or nullptr (with status_) when samples must be dropped.
  FamilyData* Current(absl::string_view what);
  // Registers the label set of a new series; false (and status_) if it repeats.
  bool NewSeries(FamilyData& family, const std::string& labels_text);
  void Fail(absl::Status status);

  std::vector<FamilyData> families_;                  // in declaration order
  absl::flat_hash_map<std::string, size_t> by_name_;  // name -> index in families_
  // Index of the current family, or -1 when none or invalid.
  int64_t current_ = -1;
  absl::Status status_;
};

}  // namespace nprpc

#endif  // RPC_INTERNAL_PROMETHEUS_WRITER_H_
