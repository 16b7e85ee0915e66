// The index algebra of generated kernels (IndexExpr.h). Plain C++: unit-tested by brute force
// against naive evaluation (test/unit/IndexExprTest.cpp).
#include "shardc/Codegen/IndexExpr.h"

#include <algorithm>

namespace shardc::codegen {
namespace {

int64_t ceilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

// How many values (i / d.div) % d.mod takes for 0 <= i < numel.
int64_t valuesOf(const Digit &d, int64_t numel) {
  const int64_t reach = ceilDiv(std::max<int64_t>(numel, 1), d.div);
  return d.mod ? std::min(d.mod, reach) : reach;
}

std::string literal(int64_t v, bool narrow) { return std::to_string(v) + (narrow ? "u" : "LL"); }

// Drops digits that are always 0, drops remainders that cannot wrap, merges digits that are
// two places of one number, and adds up digits that differ only in their multiplier.
std::vector<Digit> normalized(std::vector<Digit> digits, int64_t numel) {
  bool changed = true;
  while (changed) {
    changed = false;
    std::vector<Digit> next;
    for (Digit d : digits) {
      if (d.mul == 0 || d.mod == 1 || d.div >= std::max<int64_t>(numel, 1))
        continue; // always 0
      if (d.mod && d.div * d.mod >= numel)
        d.mod = 0; // i / div < mod already
      next.push_back(d);
    }
    for (size_t a = 0; a < next.size() && !changed; ++a)
      for (size_t b = 0; b < next.size() && !changed; ++b) {
        if (a == b)
          continue;
        Digit &lo = next[a], &hi = next[b];
        if (lo.mod && hi.div == lo.div * lo.mod && hi.mul == lo.mul * lo.mod) {
          lo = {lo.div, hi.mod ? lo.mod * hi.mod : 0, lo.mul};
          next.erase(next.begin() + long(b));
          changed = true;
        } else if (lo.div == hi.div && lo.mod == hi.mod) {
          lo.mul += hi.mul;
          next.erase(next.begin() + long(b));
          changed = true;
        }
      }
    digits = std::move(next);
  }
  std::sort(digits.begin(), digits.end(), [](const Digit &a, const Digit &b) { return a.mul > b.mul; });
  return digits;
}

} // namespace

IndexExpr IndexExpr::constant(int64_t c) {
  IndexExpr e;
  e.constant_ = c;
  return e;
}

IndexExpr IndexExpr::digit(int64_t div, int64_t mod, int64_t mul) {
  IndexExpr e;
  e.digits_.push_back({div, mod, mul});
  return e;
}

IndexExpr IndexExpr::opaque(std::string text, Lanes lanes, int64_t laneCount) {
  IndexExpr e;
  Other o;
  o.text = std::move(text);
  o.lanes = lanes;
  o.laneCount = laneCount;
  e.others_.push_back(std::move(o));
  return e;
}

IndexExpr &IndexExpr::operator+=(const IndexExpr &other) {
  digits_.insert(digits_.end(), other.digits_.begin(), other.digits_.end());
  constant_ += other.constant_;
  others_.insert(others_.end(), other.others_.begin(), other.others_.end());
  return *this;
}

IndexExpr &IndexExpr::operator*=(int64_t factor) {
  for (Digit &d : digits_)
    d.mul *= factor;
  constant_ *= factor;
  for (Other &o : others_)
    o.factor *= factor;
  return *this;
}

IndexExpr IndexExpr::cut(int64_t unit, int64_t size, int64_t numel) const {
  auto naive = [&] {
    IndexExpr e;
    Other o;
    o.inner = std::make_shared<const IndexExpr>(*this);
    o.unit = unit;
    o.size = size;
    e.others_.push_back(std::move(o));
    return e;
  };
  if (size == 1)
    return IndexExpr();
  if (!others_.empty() || constant_ != 0 || unit <= 0 || size <= 0)
    return naive();
  std::vector<Digit> ds = normalized(digits_, numel);
  // A mixed-radix number: sorted by place, each digit's range below the next one's place.
  std::sort(ds.begin(), ds.end(), [](const Digit &a, const Digit &b) { return a.mul < b.mul; });
  for (size_t k = 0; k < ds.size(); ++k) {
    if (ds[k].mul <= 0)
      return naive();
    if (k + 1 < ds.size() && ds[k + 1].mul < ds[k].mul * valuesOf(ds[k], numel))
      return naive();
  }
  // L / unit: digits at or above the unit move down; the one straddling it is split; those
  // below vanish (with no carries, their sum stays below the unit).
  std::vector<Digit> quotient;
  for (const Digit &d : ds) {
    if (d.mul % unit == 0) {
      quotient.push_back({d.div, d.mod, d.mul / unit});
    } else if (unit % d.mul == 0) {
      const int64_t q = unit / d.mul;
      if (valuesOf(d, numel) <= q)
        continue;
      if (d.mod && d.mod % q != 0)
        return naive();
      quotient.push_back({d.div * q, d.mod ? d.mod / q : 0, 1});
    } else {
      return naive();
    }
  }
  // % size: digits whose place is a multiple of the size vanish; the rest must fit below it,
  // the one straddling it keeping only its low part.
  IndexExpr out;
  for (const Digit &d : quotient) {
    if (d.mul % size == 0)
      continue;
    if (size % d.mul != 0)
      return naive();
    const int64_t r = size / d.mul;
    if (valuesOf(d, numel) <= r) {
      out.digits_.push_back(d);
    } else {
      if (d.mod && d.mod % r != 0)
        return naive();
      out.digits_.push_back({d.div, r, d.mul});
    }
  }
  out.digits_ = normalized(out.digits_, numel);
  return out;
}

std::string IndexExpr::str(int64_t numel, bool narrow) const {
  auto ll = [narrow](int64_t v) { return literal(v, narrow); };
  const std::string i = narrow ? "iu" : "i";
  std::vector<std::string> terms;
  for (const Digit &d : normalized(digits_, numel)) {
    std::string t = d.div == 1 ? i : "(" + i + " / " + ll(d.div) + ")";
    if (d.mod)
      t = "(" + t + " % " + ll(d.mod) + ")";
    if (d.mul != 1)
      t += " * " + ll(d.mul);
    terms.push_back(t);
  }
  for (const Other &o : others_) {
    if (o.factor == 0)
      continue;
    std::string text = o.text;
    if (o.inner)
      text = "(" + o.inner->str(numel, narrow) + (o.unit != 1 ? " / " + ll(o.unit) : "") + " % " + ll(o.size) + ")";
    terms.push_back(o.factor == 1 ? text : text + " * " + ll(o.factor));
  }
  std::string s;
  for (size_t k = 0; k < terms.size(); ++k)
    s += (k ? " + " : "") + terms[k];
  if (constant_ != 0 || s.empty())
    s += s.empty() ? ll(constant_) : (constant_ < 0 ? " - " + ll(-constant_) : " + " + ll(constant_));
  return terms.size() + (constant_ != 0) > 1 ? "(" + s + ")" : s;
}

IndexExpr::Lanes IndexExpr::lanes(int64_t numel, int64_t lanes) const {
  if (lanes <= 1)
    return Lanes::Other;
  // Given text counts when its caller declared it for these lanes: a contiguous one (factor 1)
  // is the lane term, a uniform one moves nothing.
  int contiguousOthers = 0;
  for (const Other &o : others_) {
    if (o.inner || o.laneCount != lanes || o.lanes == Lanes::Other)
      return Lanes::Other;
    if (o.lanes == Lanes::Contiguous) {
      if (o.factor != 1)
        return Lanes::Other;
      ++contiguousOthers;
    }
  }
  const std::vector<Digit> ds = normalized(digits_, numel);
  size_t lane = ds.size();
  for (size_t k = 0; k < ds.size(); ++k) {
    if (ds[k].div == 1) {
      if (lane != ds.size())
        return Lanes::Other;
      lane = k;
    } else if (ds[k].div % lanes != 0) {
      return Lanes::Other; // (i + k) / div may differ between the lanes
    }
  }
  const bool digitLane = lane != ds.size();
  if (int(digitLane) + contiguousOthers > 1)
    return Lanes::Other;
  if (!digitLane && contiguousOthers == 0)
    return Lanes::Uniform;
  if (digitLane && (ds[lane].mul != 1 || (ds[lane].mod && ds[lane].mod % lanes != 0)))
    return Lanes::Other;
  if (constant_ % lanes != 0)
    return Lanes::Other;
  for (size_t k = 0; k < ds.size(); ++k)
    if (k != lane && ds[k].mul % lanes != 0)
      return Lanes::Other; // contiguous, but the vector would not be aligned
  return Lanes::Contiguous;
}

int64_t IndexExpr::eval(int64_t i) const {
  int64_t v = constant_;
  for (const Digit &d : digits_)
    v += (d.mod ? (i / d.div) % d.mod : i / d.div) * d.mul;
  for (const Other &o : others_)
    if (o.inner)
      v += (o.inner->eval(i) / o.unit % o.size) * o.factor;
  return v;
}

} // namespace shardc::codegen
