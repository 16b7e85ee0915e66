// The minimal build's fallbacks (SHARDC_MINIMAL_DEPS): Inflate.cpp's CRC-32 and raw inflate,
// against fixed streams everywhere and against zlib where the build has it (random data of
// several kinds deflated at levels 0-9 with every strategy, flushes between chunks); and
// Sgemm.cpp's blocked loop against a double-precision reference (every transpose, sizes across
// the block edges, leading dimensions wider than the rows, alpha/beta cases), and sgemm itself
// (OpenBLAS or the blocked loop, whichever this build runs).
#include "Inflate.h"
#include "Sgemm.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#ifdef SHARDC_TEST_HAVE_ZLIB
#include <zlib.h>
#endif

using namespace shardc::rt;

namespace {

std::string bytesOf(const unsigned char *p, size_t n) { return std::string(reinterpret_cast<const char *>(p), n); }

// The text the dynamic-Huffman stream below decodes to: "0 1 4 9 16 ..." (i*i mod 97).
std::string squaresText() {
  std::string s;
  for (int i = 0; i < 1500; ++i)
    s += std::to_string(i * i % 97) + " ";
  return s;
}

// zlib.compressobj(9, DEFLATED, -15, 9) of squaresText(): one final dynamic-Huffman block.
const unsigned char kDynamicStream[] = {
    0xed, 0x90, 0xd1, 0x0d, 0xc5, 0x30, 0x08, 0x03, 0x57, 0xb9, 0x11, 0x0a, 0x24, 0x04, 0xf6,
    0x5f, 0xec, 0x39, 0x59, 0xe2, 0xfd, 0x20, 0x55, 0x51, 0xdb, 0x60, 0x63, 0xdf, 0x87, 0xb1,
    0x68, 0x2c, 0xf1, 0x4d, 0x24, 0xab, 0xc9, 0x45, 0x19, 0x81, 0x2f, 0xd6, 0xe1, 0x38, 0x4e,
    0x18, 0xe9, 0xb4, 0x26, 0x82, 0xf3, 0x61, 0xce, 0x0e, 0x5a, 0xd3, 0xd2, 0xca, 0x40, 0xef,
    0x8b, 0xfd, 0x51, 0xe4, 0xc6, 0x0f, 0x55, 0xec, 0x85, 0x3b, 0x25, 0x37, 0x59, 0x6d, 0xcc,
    0xa8, 0x24, 0xa5, 0x28, 0xc2, 0x31, 0x4d, 0xd2, 0x41, 0x6d, 0x4e, 0x73, 0x74, 0xc6, 0x7b,
    0xde, 0xa7, 0x7e, 0xea, 0x2a, 0xef, 0x90, 0x46, 0x25, 0x90, 0x4c, 0x62, 0x7b, 0x46, 0xb2,
    0x93, 0xa9, 0xac, 0xb5, 0x40, 0x6b, 0xb4, 0x4c, 0x2b, 0xeb, 0x2e, 0x57, 0x84, 0x1b, 0xc4,
    0x5e, 0xa8, 0xbc, 0x01, 0x15, 0x53, 0x61, 0x15, 0x59, 0xc1, 0xf3, 0x95, 0xf0, 0x5b, 0x47,
    0xa5, 0x54, 0x2d, 0x6e, 0x49, 0x55, 0x55, 0xe1, 0x78, 0xe5, 0x85, 0xa0, 0xc5, 0xc2, 0xf8,
    0x86, 0xc9, 0x30, 0x19, 0x26, 0xc3, 0x64, 0x98, 0x0c, 0x93, 0x61, 0x32, 0x4c, 0x86, 0xc9,
    0x30, 0x19, 0x26, 0xc3, 0x64, 0x98, 0x0c, 0x93, 0x61, 0xf2, 0x2f, 0x26, 0x3f
};

// The same settings with strategy Z_FIXED, of "abcabcabcabcabcabcabcXYZ": fixed codes and a
// back-reference that overlaps what it writes (distance 3, length 18).
const unsigned char kFixedStream[] = {0x4b, 0x4c, 0x4a, 0x4e, 0xc4, 0x40, 0x11, 0x91, 0x51, 0x00};

} // namespace

TEST(Crc32, KnownValues) {
  EXPECT_EQ(crc32Update(0, "", 0), 0u);
  EXPECT_EQ(crc32Update(0, "123456789", 9), 0xCBF43926u);
  EXPECT_EQ(crc32Update(0, "The quick brown fox jumps over the lazy dog", 43), 0x414FA339u);
  std::string text = squaresText();
  EXPECT_EQ(crc32Update(0, text.data(), text.size()), 0x5635627bu);
  // In pieces of every alignment, as one call.
  for (size_t cut = 0; cut < 20; ++cut)
    EXPECT_EQ(crc32Update(crc32Update(0, text.data(), cut), text.data() + cut, text.size() - cut),
              0x5635627bu);
}

TEST(Inflate, FixedStreams) {
  std::string out;
  // A stored block: BFINAL=1, BTYPE=00, LEN=5, NLEN=~5.
  const unsigned char stored[] = {0x01, 0x05, 0x00, 0xfa, 0xff, 'h', 'e', 'l', 'l', 'o'};
  EXPECT_EQ(inflateRawBuiltin(bytesOf(stored, sizeof stored), 5, out), "");
  EXPECT_EQ(out, "hello");
  EXPECT_EQ(inflateRawBuiltin(bytesOf(kFixedStream, sizeof kFixedStream), 24, out), "");
  EXPECT_EQ(out, "abcabcabcabcabcabcabcXYZ");
  std::string text = squaresText();
  EXPECT_EQ(inflateRawBuiltin(bytesOf(kDynamicStream, sizeof kDynamicStream), text.size(), out), "");
  EXPECT_TRUE(out == text) << "the squares text decoded wrong";
}

TEST(Inflate, DamagedStreamsAreRefused) {
  std::string out;
  std::string dynamic = bytesOf(kDynamicStream, sizeof kDynamicStream);
  std::string text = squaresText();
  // Truncated anywhere, or a size other than the stream's: an error, never a crash.
  for (size_t n = 0; n < dynamic.size(); n += 7)
    EXPECT_NE(inflateRawBuiltin(dynamic.substr(0, n), text.size(), out), "") << "cut at " << n;
  EXPECT_NE(inflateRawBuiltin(dynamic, text.size() - 1, out), "");
  EXPECT_NE(inflateRawBuiltin(dynamic, text.size() + 1, out), "");
  // Block type 3; a stored block whose NLEN is not ~LEN; a distance before the first byte.
  EXPECT_NE(inflateRawBuiltin(std::string("\x07\x00", 2), 0, out), "");
  const unsigned char badLen[] = {0x01, 0x05, 0x00, 0xfb, 0xff, 'h', 'e', 'l', 'l', 'o'};
  EXPECT_NE(inflateRawBuiltin(bytesOf(badLen, sizeof badLen), 5, out), "");
  // Fixed block: literal 'a' (0x91 as 8 bits), then length 3 (code 257) at distance 2 (code 1).
  // Bits LSB first: 1 (final), 10 (fixed), then the codes MSB first.
  std::string bits = "1" "10" "10010001" "0000001" "00001" "0000000";
  std::string stream((bits.size() + 7) / 8, '\0');
  for (size_t i = 0; i < bits.size(); ++i)
    if (bits[i] == '1')
      stream[i / 8] = static_cast<char>(stream[i / 8] | (1 << (i % 8)));
  EXPECT_NE(inflateRawBuiltin(stream, 4, out), "");
  bits[22] = '0'; // distance code 0: distance 1, which the literal makes valid
  for (size_t i = 0; i < stream.size(); ++i)
    stream[i] = 0;
  for (size_t i = 0; i < bits.size(); ++i)
    if (bits[i] == '1')
      stream[i / 8] = static_cast<char>(stream[i / 8] | (1 << (i % 8)));
  EXPECT_EQ(inflateRawBuiltin(stream, 4, out), "");
  EXPECT_EQ(out, "aaaa");
  // Random garbage: refused or decoded, within bounds (ASan's business).
  std::mt19937 rng(7);
  for (int t = 0; t < 200; ++t) {
    std::string junk(1 + rng() % 300, '\0');
    for (char &c : junk)
      c = static_cast<char>(rng());
    (void)inflateRawBuiltin(junk, rng() % 2000, out);
  }
}

#ifdef SHARDC_TEST_HAVE_ZLIB
namespace {

std::string zlibDeflate(const std::string &in, int level, int strategy, size_t flushEvery) {
  z_stream zs{};
  EXPECT_EQ(deflateInit2(&zs, level, Z_DEFLATED, -MAX_WBITS, 9, strategy), Z_OK);
  std::string out(deflateBound(&zs, in.size()) + 64 * (in.size() / std::max<size_t>(flushEvery, 1) + 1), '\0');
  zs.next_out = reinterpret_cast<Bytef *>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  size_t done = 0;
  while (true) {
    size_t n = std::min(flushEvery, in.size() - done);
    zs.next_in = reinterpret_cast<Bytef *>(const_cast<char *>(in.data() + done));
    zs.avail_in = static_cast<uInt>(n);
    done += n;
    bool last = done == in.size();
    int rc = deflate(&zs, last ? Z_FINISH : Z_SYNC_FLUSH);
    EXPECT_TRUE(rc == (last ? Z_STREAM_END : Z_OK)) << rc;
    if (last || rc != Z_OK)
      break;
  }
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

} // namespace

TEST(Inflate, MatchesZlib) {
  std::mt19937 rng(1234);
  // Kinds of data: random bytes (stored blocks), text, runs, f32 weights (what npz holds).
  std::vector<std::pair<std::string, std::string>> inputs;
  auto add = [&](std::string name, size_t n, auto byteAt) {
    std::string s(n, '\0');
    for (size_t i = 0; i < n; ++i)
      s[i] = static_cast<char>(byteAt(i));
    inputs.emplace_back(std::move(name), std::move(s));
  };
  add("empty", 0, [](size_t) { return 0; });
  add("one byte", 1, [](size_t) { return 'x'; });
  add("random 50k", 50000, [&](size_t) { return rng(); });
  add("text 100k", 100000, [&](size_t i) { return "shardc runtime npz "[i % 19] ^ (rng() % 50 == 0); });
  add("runs 100k", 100000, [&](size_t i) { return (i / 1000) % 7; });
  std::normal_distribution<float> normal(0.0f, 0.02f);
  std::vector<float> weights(60000);
  for (float &w : weights)
    w = normal(rng);
  inputs.emplace_back("f32 weights", std::string(reinterpret_cast<const char *>(weights.data()),
                                                 weights.size() * sizeof(float)));
  const int strategies[] = {Z_DEFAULT_STRATEGY, Z_FILTERED, Z_HUFFMAN_ONLY, Z_RLE, Z_FIXED};
  std::string out;
  for (const auto &[name, data] : inputs) {
    uint32_t crc = static_cast<uint32_t>(crc32(0L, reinterpret_cast<const Bytef *>(data.data()),
                                               static_cast<uInt>(data.size())));
    EXPECT_EQ(crc32Update(0, data.data(), data.size()), crc) << name;
    for (int level : {0, 1, 6, 9})
      for (int strategy : strategies)
        for (size_t flushEvery : {data.size() + 1, size_t(65536)}) {
          std::string deflated = zlibDeflate(data, level, strategy, std::max<size_t>(flushEvery, 1));
          EXPECT_EQ(inflateRawBuiltin(deflated, data.size(), out), "")
              << name << " level " << level << " strategy " << strategy << " flush " << flushEvery;
          EXPECT_TRUE(out == data) << name << " level " << level << " strategy " << strategy;
        }
  }
}
#else
TEST(Inflate, MatchesZlib) { GTEST_SKIP() << "this build has no zlib (SHARDC_MINIMAL_DEPS or none found)"; }
#endif

namespace {

// C = alpha op(A) op(B) + beta C in double, the blocked loop's reference.
void referenceGemm(bool tA, bool tB, int64_t M, int64_t N, int64_t K, float alpha,
                   const std::vector<float> &A, int64_t lda, const std::vector<float> &B,
                   int64_t ldb, float beta, std::vector<double> &C, int64_t ldc,
                   std::vector<double> &magnitude) {
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double s = 0, m = 0;
      for (int64_t p = 0; p < K; ++p) {
        double a = tA ? A[p * lda + i] : A[i * lda + p];
        double b = tB ? B[j * ldb + p] : B[p * ldb + j];
        s += a * b;
        m += std::fabs(a * b);
      }
      double c = beta == 0.0f ? 0.0 : double(beta) * C[i * ldc + j];
      C[i * ldc + j] = double(alpha) * s + c;
      magnitude[i * ldc + j] = std::fabs(alpha) * m + std::fabs(c);
    }
}

using GemmFn = void (*)(bool, bool, int64_t, int64_t, int64_t, float, const float *, int64_t,
                        const float *, int64_t, float, float *, int64_t);

void checkGemm(GemmFn gemm, const char *which) {
  struct Shape {
    int64_t M, N, K;
  };
  // Across kMc = 64, kKc = 256, kNc = 512 and the 4-row kernel's tail; K = 0 and 1.
  const Shape shapes[] = {{1, 1, 1},   {3, 5, 7},    {4, 4, 0},    {65, 33, 257},
                          {130, 7, 300}, {6, 600, 19}, {67, 513, 2}, {128, 96, 512}};
  const float alphas[] = {1.0f, -0.5f}, betas[] = {0.0f, 1.0f, 0.75f};
  std::mt19937 rng(99);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (const Shape &s : shapes)
    for (int t = 0; t < 4; ++t)
      for (float alpha : alphas)
        for (float beta : betas) {
          bool tA = t & 1, tB = t & 2;
          int64_t rowsA = tA ? s.K : s.M, colsA = tA ? s.M : s.K;
          int64_t rowsB = tB ? s.N : s.K, colsB = tB ? s.K : s.N;
          int64_t lda = colsA + 3, ldb = colsB + 1, ldc = s.N + 2; // wider than the rows
          std::vector<float> A(rowsA * lda + 1), B(rowsB * ldb + 1), C(s.M * ldc + 1);
          for (float &v : A)
            v = u(rng);
          for (float &v : B)
            v = u(rng);
          for (float &v : C)
            v = beta == 0.0f ? std::nanf("") : u(rng); // beta = 0 must not read C
          std::vector<double> ref(C.begin(), C.end()), mag(C.size(), 0.0);
          referenceGemm(tA, tB, s.M, s.N, s.K, alpha, A, lda, B, ldb, beta, ref, ldc, mag);
          gemm(tA, tB, s.M, s.N, s.K, alpha, A.data(), lda, B.data(), ldb, beta, C.data(), ldc);
          int bad = 0;
          for (int64_t i = 0; i < s.M; ++i)
            for (int64_t j = 0; j < s.N; ++j) {
              double got = C[i * ldc + j], want = ref[i * ldc + j];
              if (!(std::fabs(got - want) <= 1e-5 * mag[i * ldc + j] + 1e-6))
                ++bad;
            }
          // The padding between rows is left alone.
          for (int64_t i = 0; i < s.M; ++i)
            for (int64_t j = s.N; j < ldc && i * ldc + j < int64_t(C.size()); ++j)
              if (!(std::isnan(C[i * ldc + j]) && std::isnan(ref[i * ldc + j])) &&
                  C[i * ldc + j] != ref[i * ldc + j])
                ++bad;
          EXPECT_EQ(bad, 0) << which << " M=" << s.M << " N=" << s.N << " K=" << s.K
                            << " transA=" << tA << " transB=" << tB << " alpha=" << alpha
                            << " beta=" << beta;
        }
}

} // namespace

TEST(Sgemm, BlockedMatchesReference) { checkGemm(&cpu::sgemmBlocked, "sgemmBlocked"); }

TEST(Sgemm, BuildsGemmMatchesReference) { checkGemm(&cpu::sgemm, cpu::sgemmImplementation()); }

TEST(Sgemm, BlockedThroughput) {
  // A figure, not a limit: GFLOP/s of the blocked loop (and sgemm) on 512^3.
  const int64_t n = 512;
  std::vector<float> A(n * n, 0.5f), B(n * n, 0.25f), C(n * n);
  for (GemmFn fn : {GemmFn(&cpu::sgemmBlocked), GemmFn(&cpu::sgemm)}) {
    double best = 1e30;
    for (int r = 0; r < 3; ++r) {
      auto t0 = std::chrono::steady_clock::now();
      fn(false, true, n, n, n, 1.0f, A.data(), n, B.data(), n, 0.0f, C.data(), n);
      best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    EXPECT_EQ(C[0], 0.5f * 0.25f * n);
    std::printf("%s 512x512x512 (B transposed): %.1f GFLOP/s\n",
                fn == GemmFn(&cpu::sgemm) ? cpu::sgemmImplementation() : "sgemmBlocked",
                2.0 * n * n * n / best * 1e-9);
  }
}
