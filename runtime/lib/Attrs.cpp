// Typed getters of step attributes. The manifest's JSON does not distinguish 1 from 1.0 or
// a bool from 0/1 reliably across producers, so each getter accepts the neighbouring kinds.
#include "shardc/runtime/Kernel.h"

#include <cmath>

namespace shardc::rt {

int64_t Attrs::getInt(std::string_view key, int64_t dflt) const {
  auto it = values_.find(key);
  if (it == values_.end())
    return dflt;
  const AttrValue &v = it->second;
  if (auto *i = std::get_if<int64_t>(&v))
    return *i;
  if (auto *b = std::get_if<bool>(&v))
    return *b ? 1 : 0;
  if (auto *d = std::get_if<double>(&v))
    return std::isfinite(*d) ? static_cast<int64_t>(*d) : dflt;
  return dflt;
}

double Attrs::getFloat(std::string_view key, double dflt) const {
  auto it = values_.find(key);
  if (it == values_.end())
    return dflt;
  const AttrValue &v = it->second;
  if (auto *d = std::get_if<double>(&v))
    return *d;
  if (auto *i = std::get_if<int64_t>(&v))
    return static_cast<double>(*i);
  if (auto *b = std::get_if<bool>(&v))
    return *b ? 1.0 : 0.0;
  return dflt;
}

bool Attrs::getBool(std::string_view key, bool dflt) const {
  auto it = values_.find(key);
  if (it == values_.end())
    return dflt;
  const AttrValue &v = it->second;
  if (auto *b = std::get_if<bool>(&v))
    return *b;
  if (auto *i = std::get_if<int64_t>(&v))
    return *i != 0;
  if (auto *d = std::get_if<double>(&v))
    return *d != 0.0;
  return dflt;
}

std::string Attrs::getString(std::string_view key, std::string dflt) const {
  auto it = values_.find(key);
  if (it == values_.end())
    return dflt;
  if (auto *s = std::get_if<std::string>(&it->second))
    return *s;
  return dflt;
}

std::vector<int64_t> Attrs::getInts(std::string_view key) const {
  auto it = values_.find(key);
  if (it == values_.end())
    return {};
  const AttrValue &v = it->second;
  if (auto *ints = std::get_if<std::vector<int64_t>>(&v))
    return *ints;
  std::vector<int64_t> out;
  if (auto *doubles = std::get_if<std::vector<double>>(&v)) {
    // An empty JSON array may decode as either vector kind; doubles arrive from producers
    // that print integral values as 1.0.
    for (double d : *doubles)
      out.push_back(std::isfinite(d) ? static_cast<int64_t>(d) : 0);
  } else if (auto *i = std::get_if<int64_t>(&v)) {
    out.push_back(*i);
  }
  return out;
}

} // namespace shardc::rt
