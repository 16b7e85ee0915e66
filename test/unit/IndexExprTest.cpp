// The generated kernels' index algebra (compiler/lib/Codegen/IndexExpr.cpp) against plain
// evaluation: random chains of views (transpose, reshape, slice, broadcast) composed the way
// the kernel emitter composes them, every element of every chain compared, plus the printed
// forms the simplification exists for.
#include "shardc/Codegen/IndexExpr.h"

#include <gtest/gtest.h>

#include <functional>
#include <random>
#include <vector>

namespace {

using shardc::codegen::IndexExpr;
using Shape = std::vector<int64_t>;

int64_t numelOf(const Shape &s) {
  int64_t n = 1;
  for (int64_t d : s)
    n *= d;
  return n;
}

Shape stridesOf(const Shape &s) {
  Shape st(s.size(), 1);
  for (int64_t d = int64_t(s.size()) - 2; d >= 0; --d)
    st[size_t(d)] = st[size_t(d + 1)] * s[size_t(d + 1)];
  return st;
}

// The output coordinates of element i, as the emitter starts.
std::vector<IndexExpr> outputCoords(const Shape &out) {
  std::vector<IndexExpr> c(out.size());
  int64_t stride = 1;
  for (int64_t d = int64_t(out.size()) - 1; d >= 0; --d) {
    c[size_t(d)] = IndexExpr::digit(stride, d == 0 ? 0 : out[size_t(d)]);
    stride *= out[size_t(d)];
  }
  return c;
}

IndexExpr linearOf(const std::vector<IndexExpr> &c, const Shape &shape) {
  Shape st = stridesOf(shape);
  IndexExpr l;
  for (size_t k = 0; k < shape.size(); ++k)
    if (shape[k] != 1)
      l += c[k] * st[k];
  return l;
}

// A random factorisation of n into up to 4 dims.
Shape randomShapeOf(int64_t n, std::mt19937 &rng) {
  Shape s;
  while (n > 1 && s.size() < 3) {
    std::vector<int64_t> divisors;
    for (int64_t d = 1; d <= n; ++d)
      if (n % d == 0)
        divisors.push_back(d);
    int64_t d = divisors[rng() % divisors.size()];
    s.push_back(d);
    n /= d;
  }
  s.push_back(n);
  std::shuffle(s.begin(), s.end(), rng);
  return s;
}

TEST(IndexExpr, RandomViewChainsMatchPlainEvaluation) {
  std::mt19937 rng(2024);
  int simplified = 0, chains = 0, vectorisable = 0;
  for (int trial = 0; trial < 3000; ++trial) {
    // The kernel's output shape; a chain of views walks back to a stored input.
    Shape out = randomShapeOf(int64_t(1) << (2 + rng() % 6), rng);
    if (rng() % 3 == 0)
      out = randomShapeOf(int64_t(12) * (1 + rng() % 5), rng);
    const int64_t numel = numelOf(out);
    std::vector<IndexExpr> c = outputCoords(out);
    // Plain evaluation of the same chain: coordinates as numbers.
    std::vector<std::function<std::vector<int64_t>(std::vector<int64_t>)>> steps;
    Shape shape = out;
    const int depth = 1 + int(rng() % 4);
    for (int s = 0; s < depth; ++s) {
      const int kind = int(rng() % 3);
      if (kind == 0) { // transpose: the view's dim k is the source's perm[k]
        std::vector<size_t> perm(shape.size());
        for (size_t k = 0; k < perm.size(); ++k)
          perm[k] = k;
        std::shuffle(perm.begin(), perm.end(), rng);
        std::vector<IndexExpr> u(shape.size());
        Shape src(shape.size());
        for (size_t k = 0; k < perm.size(); ++k) {
          u[perm[k]] = c[k];
          src[perm[k]] = shape[k];
        }
        c = u;
        shape = src;
        steps.push_back([perm](std::vector<int64_t> x) {
          std::vector<int64_t> y(x.size());
          for (size_t k = 0; k < perm.size(); ++k)
            y[perm[k]] = x[k];
          return y;
        });
      } else if (kind == 1) { // reshape from a random source shape of the same size
        Shape src = randomShapeOf(numelOf(shape), rng);
        IndexExpr l = linearOf(c, shape);
        Shape su = stridesOf(src);
        std::vector<IndexExpr> u(src.size());
        for (size_t k = 0; k < src.size(); ++k)
          u[k] = src[k] == 1 ? IndexExpr() : l.cut(su[k], src[k], numel);
        c = u;
        Shape viewShape = shape;
        shape = src;
        steps.push_back([viewShape, src](std::vector<int64_t> x) {
          int64_t lin = 0;
          Shape st = stridesOf(viewShape), ss = stridesOf(src);
          for (size_t k = 0; k < x.size(); ++k)
            lin += x[k] * st[k];
          std::vector<int64_t> y(src.size());
          for (size_t k = 0; k < src.size(); ++k)
            y[k] = lin / ss[k] % src[k];
          return y;
        });
      } else { // slice of a larger source: start + c * step along one dim
        const size_t k = rng() % shape.size();
        const int64_t start = int64_t(rng() % 3), step = 1 + int64_t(rng() % 2);
        c[k] = c[k] * step + IndexExpr::constant(start);
        Shape src = shape;
        src[k] = start + (shape[k] - 1) * step + 1 + int64_t(rng() % 2);
        shape = src;
        steps.push_back([k, start, step](std::vector<int64_t> x) {
          x[k] = start + x[k] * step;
          return x;
        });
      }
    }
    const IndexExpr offset = linearOf(c, shape);
    const Shape st = stridesOf(shape);
    ++chains;
    // What vectorised kernels rely on: a Contiguous offset moves by one per lane from an
    // aligned start, a Uniform one does not move.
    for (int64_t lanes : {2, 4}) {
      IndexExpr::Lanes kind = offset.lanes(numel, lanes);
      if (kind == IndexExpr::Lanes::Other || numel % lanes != 0)
        continue;
      for (int64_t i = 0; i < numel; i += lanes) {
        if (kind == IndexExpr::Lanes::Contiguous)
          ASSERT_EQ(offset.eval(i) % lanes, 0) << offset.str(numel);
        for (int64_t k = 1; k < lanes; ++k)
          ASSERT_EQ(offset.eval(i + k), offset.eval(i) + (kind == IndexExpr::Lanes::Contiguous ? k : 0))
              << "trial " << trial << " lanes " << lanes << ": " << offset.str(numel);
      }
      ++vectorisable;
    }
    for (int64_t i = 0; i < numel; ++i) {
      std::vector<int64_t> x(out.size());
      int64_t rest = i;
      for (int64_t d = int64_t(out.size()) - 1; d >= 0; --d) {
        x[size_t(d)] = rest % out[size_t(d)];
        rest /= out[size_t(d)];
      }
      for (auto &step : steps)
        x = step(x);
      int64_t want = 0;
      for (size_t k = 0; k < x.size(); ++k)
        want += x[k] * st[k];
      ASSERT_EQ(offset.eval(i), want) << "trial " << trial << " i " << i << ": " << offset.str(numel);
    }
    simplified += offset.str(numel).find('(') == std::string::npos ||
                  offset.str(numel).find(" / ") == std::string::npos;
  }
  EXPECT_EQ(chains, 3000);
  EXPECT_GT(vectorisable, 500) << "too few chains exercise the lane classification";
  RecordProperty("chains_without_divisions", simplified);
}

TEST(IndexExpr, ContiguousViewsPrintAsTheElementIndex) {
  // [2, 64, 256] read through itself: (i / 16384) * 16384 + ((i / 256) % 64) * 256 + i % 256.
  const Shape out{2, 64, 256};
  auto c = outputCoords(out);
  EXPECT_EQ(linearOf(c, out).str(2 * 64 * 256), "i");
  // A head merge: [2, 4, 64, 32] transposed to [2, 64, 4, 32] and reshaped to [2, 64, 128],
  // read contiguously by the kernel writing [2, 64, 128]: the offset into the [2, 4, 64, 32]
  // input needs the head and position digits swapped, and nothing else.
  const Shape merged{2, 64, 128}, heads{2, 64, 4, 32}, stored{2, 4, 64, 32};
  auto m = outputCoords(merged);
  IndexExpr l = linearOf(m, merged);
  Shape sh = stridesOf(heads);
  std::vector<IndexExpr> u(4);
  for (size_t k = 0; k < 4; ++k)
    u[k] = l.cut(sh[k], heads[k], 2 * 64 * 128);
  std::vector<IndexExpr> t{u[0], u[2], u[1], u[3]}; // transpose back to [2, 4, 64, 32]
  EXPECT_EQ(linearOf(t, stored).str(2 * 64 * 128),
            "((i / 8192LL) * 8192LL + ((i / 32LL) % 4LL) * 2048LL + ((i / 128LL) % 64LL) * 32LL + (i % 32LL))");
  EXPECT_EQ(linearOf(t, stored).str(2 * 64 * 128, /*narrow=*/true),
            "((iu / 8192u) * 8192u + ((iu / 32u) % 4u) * 2048u + ((iu / 128u) % 64u) * 32u + (iu % 32u))");
}

TEST(IndexExpr, WhatDoesNotSimplifyStaysExact) {
  // (3i + 1) / 2 % 5 has no digit form: it prints as the plain arithmetic.
  IndexExpr e = IndexExpr::digit(1, 0, 3) + IndexExpr::constant(1);
  IndexExpr cut = e.cut(2, 5, 100);
  for (int64_t i = 0; i < 100; ++i)
    EXPECT_EQ(cut.eval(i), (3 * i + 1) / 2 % 5);
  EXPECT_EQ(cut.str(100), "((i * 3LL + 1LL) / 2LL % 5LL)");
  EXPECT_EQ(IndexExpr::opaque("(j < 4LL ? j : 0LL)").str(10), "(j < 4LL ? j : 0LL)");
  // Overlapping digits (i % 4 + ((i / 4) % 4) * 2 carries): not cut digit by digit.
  IndexExpr overlap = IndexExpr::digit(1, 4, 1) + IndexExpr::digit(4, 4, 2);
  IndexExpr high = overlap.cut(2, 4, 16);
  for (int64_t i = 0; i < 16; ++i)
    EXPECT_EQ(high.eval(i), (i % 4 + (i / 4 % 4) * 2) / 2 % 4) << i;
}

} // namespace
