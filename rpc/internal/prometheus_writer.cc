#include "rpc/internal/prometheus_writer.h"

#include <charconv>
#include <cmath>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace nprpc {
namespace {

absl::string_view TypeName(PrometheusWriter::Type type) {
  switch (type) {
    case PrometheusWriter::kCounter:
      return "counter";
    case PrometheusWriter::kGauge:
      return "gauge";
    case PrometheusWriter::kSummary:
      return "summary";
    case PrometheusWriter::kUntyped:
      return "untyped";
  }
  return "untyped";
}

}  // namespace

bool PrometheusWriter::IsValidMetricName(absl::string_view name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok = absl::ascii_isalpha(c) || c == '_' || c == ':' || (i > 0 && absl::ascii_isdigit(c));
    if (!ok) return false;
  }
  return true;
}

bool PrometheusWriter::IsValidLabelName(absl::string_view name) {
  if (name.empty() || absl::StartsWith(name, "__")) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok = absl::ascii_isalpha(c) || c == '_' || (i > 0 && absl::ascii_isdigit(c));
    if (!ok) return false;
  }
  return true;
}

std::string PrometheusWriter::EscapeLabelValue(absl::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string PrometheusWriter::EscapeHelp(absl::string_view help) {
  std::string out;
  out.reserve(help.size());
  for (char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string PrometheusWriter::FormatValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  if (value == std::floor(value) && std::fabs(value) < 1e15) {
    return absl::StrCat(static_cast<int64_t>(value));
  }
  char buf[64];
  auto result = std::to_chars(buf, buf + sizeof(buf), value);
  return std::string(buf, result.ptr);
}

void PrometheusWriter::Fail(absl::Status status) {
  if (status_.ok()) status_ = std::move(status);
}

void PrometheusWriter::Family(absl::string_view name, Type type, absl::string_view help) {
  current_ = -1;
  auto it = by_name_.find(name);
  if (it != by_name_.end()) {
    if (families_[it->second].type != type) {
      Fail(absl::InvalidArgumentError(absl::StrCat("metric family ", name, " redeclared as ",
                                                   TypeName(type), ", was ",
                                                   TypeName(families_[it->second].type))));
      return;
    }
    current_ = static_cast<int64_t>(it->second);
    return;
  }
  if (!IsValidMetricName(name)) {
    Fail(absl::InvalidArgumentError(absl::StrCat("invalid metric name \"", name, "\"")));
    return;
  }
  bool total = absl::EndsWith(name, "_total");
  if (type == kCounter && !total) {
    Fail(absl::InvalidArgumentError(absl::StrCat("counter ", name, " must end in _total")));
    return;
  }
  if (type != kCounter && total) {
    Fail(absl::InvalidArgumentError(
        absl::StrCat(TypeName(type), " ", name, " must not end in _total")));
    return;
  }
  if (type == kSummary && (absl::EndsWith(name, "_sum") || absl::EndsWith(name, "_count") ||
                           absl::EndsWith(name, "_bucket"))) {
    Fail(absl::InvalidArgumentError(absl::StrCat("summary ", name, " has a reserved suffix")));
    return;
  }
  FamilyData family;
  family.name = std::string(name);
  family.type = type;
  family.help = std::string(help);
  by_name_.emplace(family.name, families_.size());
  current_ = static_cast<int64_t>(families_.size());
  families_.push_back(std::move(family));
}

PrometheusWriter::FamilyData* PrometheusWriter::Current(absl::string_view what) {
  if (current_ < 0) {
    Fail(absl::FailedPreconditionError(absl::StrCat(what, " without a valid family")));
    return nullptr;
  }
  return &families_[static_cast<size_t>(current_)];
}

bool PrometheusWriter::AppendLabels(const Labels& labels, absl::string_view extra_name,
                                    absl::string_view extra_value, std::string& out) {
  if (labels.empty() && extra_name.empty()) return true;
  std::string text = "{";
  for (size_t i = 0; i < labels.size(); ++i) {
    absl::string_view name = labels[i].first;
    if (!IsValidLabelName(name) || name == "quantile" || name == "le") {
      Fail(absl::InvalidArgumentError(absl::StrCat("invalid label name \"", name, "\"")));
      return false;
    }
    for (size_t j = 0; j < i; ++j) {
      if (labels[j].first == name) {
        Fail(absl::InvalidArgumentError(absl::StrCat("label ", name, " given twice")));
        return false;
      }
    }
    if (i > 0) text += ',';
    absl::StrAppend(&text, name, "=\"", EscapeLabelValue(labels[i].second), "\"");
  }
  if (!extra_name.empty()) {
    if (!labels.empty()) text += ',';
    absl::StrAppend(&text, extra_name, "=\"", extra_value, "\"");
  }
  text += '}';
  out += text;
  return true;
}

bool PrometheusWriter::NewSeries(FamilyData& family, const std::string& labels_text) {
  if (family.label_sets.insert(labels_text).second) return true;
  Fail(absl::InvalidArgumentError(
      absl::StrCat("metric ", family.name, labels_text, " written twice")));
  return false;
}

void PrometheusWriter::Sample(const Labels& labels, double value) {
  FamilyData* family = Current("Sample");
  if (family == nullptr) return;
  if (family->type == kSummary) {
    Fail(absl::FailedPreconditionError(
        absl::StrCat("Sample on summary ", family->name, ": use Summary")));
    return;
  }
  std::string labels_text;
  if (!AppendLabels(labels, "", "", labels_text)) return;
  if (!NewSeries(*family, labels_text)) return;
  absl::StrAppend(&family->samples, family->name, labels_text, " ", FormatValue(value), "\n");
}

void PrometheusWriter::Summary(const Labels& labels, const Quantiles& quantiles, double sum,
                               int64_t count) {
  FamilyData* family = Current("Summary");
  if (family == nullptr) return;
  if (family->type != kSummary) {
    Fail(absl::FailedPreconditionError(
        absl::StrCat("Summary on ", TypeName(family->type), " ", family->name)));
    return;
  }
  std::string labels_text;
  if (!AppendLabels(labels, "", "", labels_text)) return;
  if (!NewSeries(*family, labels_text)) return;
  for (const auto& [q, value] : quantiles) {
    if (!(q >= 0 && q <= 1)) {
      Fail(absl::InvalidArgumentError(absl::StrCat("quantile ", q, " outside [0, 1]")));
      continue;
    }
    std::string text;
    AppendLabels(labels, "quantile", FormatValue(q), text);
    absl::StrAppend(&family->samples, family->name, text, " ", FormatValue(value), "\n");
  }
  absl::StrAppend(&family->samples, family->name, "_sum", labels_text, " ", FormatValue(sum), "\n");
  absl::StrAppend(&family->samples, family->name, "_count", labels_text, " ", count, "\n");
}

std::string PrometheusWriter::ToString() const {
  std::string out;
  for (const FamilyData& family : families_) {
    absl::StrAppend(&out, "# HELP ", family.name, " ", EscapeHelp(family.help), "\n");
    absl::StrAppend(&out, "# TYPE ", family.name, " ", TypeName(family.type), "\n");
    out += family.samples;
  }
  return out;
}

}  // namespace nprpc
