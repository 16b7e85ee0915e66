// Index arithmetic of generated kernels, kept symbolic so that chains of views simplify.
//
// A generated kernel computes element i of its output (0 <= i < numel). Every coordinate and
// offset it loads at is a function of i. Views compose: a transpose permutes coordinates, a
// slice scales and shifts one, a reshape flattens coordinates into a linear index and cuts it
// into the source's coordinates again. Written out naively, a head split feeding a transpose
// feeding a reshape gives nested divisions and remainders of 64-bit integers per element,
// which on a GPU cost more than the loads. Here an index is a sum of *digits*
// ((i / div) % mod) * mul, a constant, and opaque terms (rotary's partner, a concat's
// selection), and the operations keep that form where it is exact:
//  - cutting a linear index of non-overlapping digits (a mixed-radix number, no carries) into
//    (L / unit) % size moves, splits or drops whole digits;
//  - printing merges adjacent digits ((i / d) % m) * s + ((i / (d m)) % n) * (s m) into
//    ((i / d) % (m n)) * s and drops a remainder that cannot wrap (i < numel), so that a
//    contiguous read prints as `i`.
// Anything else falls back to the naive text, which is always correct.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace shardc::codegen {

struct Digit {
  int64_t div = 1; // i / div
  int64_t mod = 0; // % mod; 0: no remainder taken
  int64_t mul = 1; // * mul
};

class IndexExpr {
public:
  IndexExpr() = default;
  static IndexExpr constant(int64_t c);
  // ((i / div) % mod) * mul; mod 0 for none.
  static IndexExpr digit(int64_t div, int64_t mod, int64_t mul = 1);
  // An expression the algebra does not model (must be a non-negative integer expression).
  // `lanes`: what the caller knows of it over lanes consecutive elements from a multiple of
  // `laneCount` (see lanes()); Other when nothing is known.
  enum class Lanes { Contiguous, Uniform, Other };
  static IndexExpr opaque(std::string text, Lanes lanes = Lanes::Other, int64_t laneCount = 0);

  IndexExpr &operator+=(const IndexExpr &other);
  IndexExpr &operator*=(int64_t factor);
  friend IndexExpr operator+(IndexExpr a, const IndexExpr &b) { return a += b; }
  friend IndexExpr operator*(IndexExpr a, int64_t f) { return a *= f; }

  // (this / unit) % size for a non-negative index; `numel` bounds i.
  IndexExpr cut(int64_t unit, int64_t size, int64_t numel) const;

  // How the expression changes over `lanes` consecutive elements i, i+1, ... from an i that
  // is a multiple of `lanes`: Contiguous (value(i + k) = value(i) + k, and value(i) is a
  // multiple of `lanes`: one aligned vector load), Uniform (the same value for all lanes), or
  // Other. Judged from the digits alone (given text is Other).
  Lanes lanes(int64_t numel, int64_t lanes) const;

  bool isZero() const { return digits_.empty() && constant_ == 0 && others_.empty(); }
  // C++ text over `long long i` (a kernel's element index, 0 <= i < numel); `narrow`: over
  // `unsigned iu` (the same index) in 32-bit arithmetic, for kernels whose every offset fits.
  std::string str(int64_t numel, bool narrow = false) const;
  // The value at `i`; 0 for given text (tests use expressions without it).
  int64_t eval(int64_t i) const;

private:
  // A term outside the digit form: given text, or a cut that did not simplify
  // ((inner / unit) % size), times `factor`.
  struct Other {
    std::string text;
    Lanes lanes = Lanes::Other; // given text: as the caller declared it, for laneCount lanes
    int64_t laneCount = 0;
    std::shared_ptr<const IndexExpr> inner;
    int64_t unit = 1, size = 1;
    int64_t factor = 1;
  };
  std::vector<Digit> digits_;
  int64_t constant_ = 0;
  std::vector<Other> others_;
};

} // namespace shardc::codegen
