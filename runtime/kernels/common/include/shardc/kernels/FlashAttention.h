// Flash attention forward (FlashAttention-2's schedule) on tensor cores, one source for the
// CUDA backend (nvcc) and the CPU tests (the Simt.h emulator).
//
// y = softmax(scale · q·kᵀ + mask) · v per (batch, query head), q [B, Hq, S, D], k [B, Hkv, T, D],
// v [B, Hkv, T, D], y [B, Hq, S, D], 16-bit floats (bf16 or f16) with f32 accumulation. GQA:
// query head h reads kv head h / (Hq / Hkv). `causal`: query i sees keys j <= i (upper-left
// aligned, as the CPU kernel). An optional mask broadcast over [B, Hq, S, T]: bool (false
// masks out) or additive f32. A row with nothing to attend to is zero, as on the CPU.
//
// A block of 4 warps takes 64 query rows of one (batch, head), 16 per warp, and walks the keys
// in tiles of 64: the tiles of k and v go to shared memory by cp.async, two stages deep (the
// next tile's copies fly while this one computes); each warp computes its 16 x 64
// scores with mma.m16n8k16 (q's fragments stay in registers for the whole walk), applies scale
// and masks, updates its rows' running max and sum (online softmax), rounds the probabilities
// to the input type and multiplies them into v with the same instruction, reusing the score
// accumulators' registers as the A fragments. Causal blocks stop at their last row's diagonal.
#pragma once

#include "shardc/kernels/FusedPrelude.h"
#include "shardc/kernels/Simt.h"

#include <cstdint>

namespace shardc::kernels {

struct FlashAttentionParams {
  const void *q = nullptr, *k = nullptr, *v = nullptr;
  void *y = nullptr;
  const void *mask = nullptr;
  int64_t B = 0, Hq = 0, Hkv = 0, S = 0, T = 0;
  int64_t maskStride[4] = {0, 0, 0, 0}; // broadcast strides of the mask over [B, Hq, S, T]
  int maskKind = 0;                     // 0 none, 1 bool, 2 additive f32
  float scale = 1.0f;
  int causal = 0;
};

constexpr int kFlashWarps = 4;
constexpr int kFlashThreads = 32 * kFlashWarps;
constexpr int kFlashRows = 16 * kFlashWarps; // query rows per block
constexpr int kFlashKeys = 64;               // keys per tile
// Head dims with a kernel (multiples of 16; q, k and v share it).
constexpr bool flashAttentionSupportsHeadDim(int64_t d) { return d == 32 || d == 64 || d == 128; }
// The launch grid: x over query tiles, y over batch x query heads.
SIMT_HOST_DEVICE int64_t flashAttentionGridX(int64_t S) { return (S + kFlashRows - 1) / kFlashRows; }
// Dynamic shared memory of a launch: two stages of a k and a v tile, rows padded by 8.
constexpr size_t flashAttentionSharedBytes(int64_t d) { return size_t(2 * 2 * kFlashKeys * (d + 8) * 2); }
// k and v are read 16 bytes at a time: their base addresses must be 16-byte aligned (q and y
// 4-byte aligned).

namespace flash_detail {

template <bool Bf16> SIMT_DEVICE float load16(const uint16_t *p) {
  return Bf16 ? sc_from_bf16(*p) : sc_from_f16(*p);
}
template <bool Bf16> SIMT_DEVICE uint16_t round16(float f) { return Bf16 ? sc_to_bf16(f) : sc_to_f16(f); }
SIMT_DEVICE uint32_t pack(uint16_t lo, uint16_t hi) { return uint32_t(lo) | (uint32_t(hi) << 16); }
// Two consecutive 16-bit elements (4-byte aligned: even offsets of 4-byte aligned tensors).
SIMT_DEVICE uint32_t load2(const uint16_t *p) { return *reinterpret_cast<const uint32_t *>(p); }
SIMT_DEVICE float fmaxOf(float a, float b) { return a > b ? a : b; }
SIMT_DEVICE float exp2Of(float x) {
#if defined(__CUDACC__)
  return exp2f(x);
#else
  return std::exp2(x);
#endif
}

} // namespace flash_detail

template <bool Bf16, int D>
SIMT_DEVICE void flashAttentionForward(const FlashAttentionParams &p) {
  using namespace flash_detail;
  static_assert(D % 16 == 0 && D <= 128, "head dim: a multiple of 16 up to 128");
  constexpr int kPad = 8; // shared rows padded against bank conflicts
  constexpr int kStride = D + kPad;
  constexpr float kLog2e = 1.4426950408889634f;
  constexpr float kNegInf = -__builtin_huge_valf();

  // Two stages of (k tile, v tile): the next tile's copies fly while this one computes.
  SIMT_DYNAMIC_SHARED(uint16_t, stages);

  const int tid = simt::threadIdxX(), warp = tid / 32, lane = tid % 32;
  const int group = lane >> 2, inGroup = lane & 3;
  const int64_t bh = simt::blockIdxY(), b = bh / p.Hq, h = bh % p.Hq;
  const int64_t kvHead = h / (p.Hq / p.Hkv);
  // Causal blocks of late rows walk the most keys: they take the first block indices, so that
  // the longest blocks start first and short ones fill the tail of the grid.
  const int64_t rowTile = p.causal ? flashAttentionGridX(p.S) - 1 - simt::blockIdxX() : simt::blockIdxX();
  const int64_t blockRow0 = rowTile * kFlashRows;
  const int64_t row0 = blockRow0 + warp * 16 + group, row1 = row0 + 8; // this lane's two rows
  const uint16_t *q = static_cast<const uint16_t *>(p.q) + (b * p.Hq + h) * p.S * D;
  const uint16_t *k = static_cast<const uint16_t *>(p.k) + (b * p.Hkv + kvHead) * p.T * D;
  const uint16_t *v = static_cast<const uint16_t *>(p.v) + (b * p.Hkv + kvHead) * p.T * D;
  uint16_t *y = static_cast<uint16_t *>(p.y) + (b * p.Hq + h) * p.S * D;

  // q's A fragments for the whole walk: k-step kk covers head dims kk*16 .. kk*16+15.
  uint32_t qa[D / 16][4];
  SIMT_UNROLL
  for (int kk = 0; kk < D / 16; ++kk) {
    const int c = kk * 16 + inGroup * 2;
    qa[kk][0] = row0 < p.S ? load2(q + row0 * D + c) : 0u;
    qa[kk][1] = row1 < p.S ? load2(q + row1 * D + c) : 0u;
    qa[kk][2] = row0 < p.S ? load2(q + row0 * D + c + 8) : 0u;
    qa[kk][3] = row1 < p.S ? load2(q + row1 * D + c + 8) : 0u;
  }

  // Running max (in log2 units), sum, and output accumulators of rows row0 (index 0) and row1.
  float m[2] = {kNegInf, kNegInf}, l[2] = {0.0f, 0.0f};
  float o[D / 8][4];
  SIMT_UNROLL
  for (int n = 0; n < D / 8; ++n)
    o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;

  const float scaleLog2 = p.scale * kLog2e;
  const int64_t keyEnd =
      p.causal ? (blockRow0 + kFlashRows < p.T ? blockRow0 + kFlashRows : p.T) : p.T;
  // Tile t's k and v rows into stage t % 2, 16 bytes per copy (keys past T zero-filled).
  auto loadTile = [&](int64_t t) {
    uint16_t *ks = stages + (t & 1) * 2 * kFlashKeys * kStride, *vs = ks + kFlashKeys * kStride;
    SIMT_UNROLL
    for (int idx = tid; idx < kFlashKeys * (D / 8); idx += kFlashThreads) {
      const int r = idx / (D / 8), c = (idx % (D / 8)) * 8;
      const int64_t key = t * kFlashKeys + r;
      const bool valid = key < p.T;
      simt::cpAsync16(ks + r * kStride + c, k + (valid ? key : 0) * D + c, valid);
      simt::cpAsync16(vs + r * kStride + c, v + (valid ? key : 0) * D + c, valid);
    }
  };
  const int64_t tiles = (keyEnd + kFlashKeys - 1) / kFlashKeys;
  if (tiles > 0)
    loadTile(0);
  simt::cpAsyncCommit();
  for (int64_t t = 0; t < tiles; ++t) {
    const int64_t key0 = t * kFlashKeys;
    if (t + 1 < tiles)
      loadTile(t + 1); // into the stage every warp finished with (the barrier at the loop's end)
    simt::cpAsyncCommit();
    simt::cpAsyncWait<1>(); // this thread's copies of tile t have landed
    simt::syncThreads();    // and everyone else's
    const uint16_t *ks = stages + (t & 1) * 2 * kFlashKeys * kStride, *vs = ks + kFlashKeys * kStride;

    // Scores: s[n] is the 16 x 8 tile of keys key0 + n*8 .. +7. One ldmatrix brings the B
    // fragments of two key tiles for one k-step: matrix i holds keys (2*n2 + i/2)*8 .. +7 and
    // head dims kk*16 + (i%2)*8 .. +7; lane l addresses row l%8 of matrix l/8.
    float s[kFlashKeys / 8][4];
    SIMT_UNROLL
    for (int n = 0; n < kFlashKeys / 8; ++n)
      s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.0f;
    const int ldMatrix = lane / 8, ldRow = lane % 8;
    SIMT_UNROLL
    for (int n2 = 0; n2 < kFlashKeys / 16; ++n2) {
      const uint16_t *krow = ks + ((2 * n2 + (ldMatrix >> 1)) * 8 + ldRow) * kStride + (ldMatrix & 1) * 8;
      SIMT_UNROLL
      for (int kk = 0; kk < D / 16; ++kk) {
        uint32_t kb[4];
        simt::ldmatrixX4<false>(kb, krow + kk * 16);
        simt::mmaM16n8k16<Bf16>(s[2 * n2], qa[kk], kb);
        simt::mmaM16n8k16<Bf16>(s[2 * n2 + 1], qa[kk], kb + 2);
      }
    }

    // Scale (into log2 units), masks, and the rows' maxima over this tile.
    // Tiles inside the keys, below the block's diagonal and without a mask skip the per-element
    // tests (rows past S compute on zero queries and are never written).
    const bool edge = p.maskKind != 0 || key0 + kFlashKeys > p.T ||
                      (p.causal && key0 + kFlashKeys - 1 > blockRow0);
    float tileMax[2] = {kNegInf, kNegInf};
    SIMT_UNROLL
    for (int n = 0; n < kFlashKeys / 8; ++n)
      SIMT_UNROLL
      for (int e = 0; e < 4; ++e) {
        const int64_t row = e < 2 ? row0 : row1;
        const int64_t key = key0 + n * 8 + inGroup * 2 + (e & 1);
        float x = s[n][e] * scaleLog2;
        if (!edge) {
        } else if (key >= p.T || row >= p.S || (p.causal && key > row)) {
          x = kNegInf;
        } else if (p.maskKind != 0) {
          const int64_t at = b * p.maskStride[0] + h * p.maskStride[1] + row * p.maskStride[2] +
                             key * p.maskStride[3];
          if (p.maskKind == 1) {
            if (!static_cast<const uint8_t *>(p.mask)[at])
              x = kNegInf;
          } else {
            x += static_cast<const float *>(p.mask)[at] * kLog2e;
          }
        }
        s[n][e] = x;
        tileMax[e >> 1] = fmaxOf(tileMax[e >> 1], x);
      }
    float base[2], alpha[2];
    SIMT_UNROLL
    for (int r = 0; r < 2; ++r) {
      // The four lanes of a group hold a row's 64 scores between them.
      tileMax[r] = fmaxOf(tileMax[r], simt::shflXor(tileMax[r], 1));
      tileMax[r] = fmaxOf(tileMax[r], simt::shflXor(tileMax[r], 2));
      const float mNew = fmaxOf(m[r], tileMax[r]);
      base[r] = mNew == kNegInf ? 0.0f : mNew; // nothing seen yet: keep exp2 finite
      alpha[r] = m[r] == kNegInf ? 0.0f : exp2Of(m[r] - base[r]);
      m[r] = mNew;
    }

    // Probabilities, rounded to the input type (what the second product multiplies), their
    // row sums from the rounded values, packed as the A fragments of the P·v product.
    float tileSum[2] = {0.0f, 0.0f};
    uint32_t pa[kFlashKeys / 16][4];
    SIMT_UNROLL
    for (int n = 0; n < kFlashKeys / 8; ++n) {
      uint16_t e16[4];
      SIMT_UNROLL
      for (int e = 0; e < 4; ++e) {
        const float x = s[n][e] == kNegInf ? 0.0f : exp2Of(s[n][e] - base[e >> 1]);
        e16[e] = round16<Bf16>(x);
        tileSum[e >> 1] += load16<Bf16>(&e16[e]);
      }
      // Score tile n holds keys n*8..n*8+7: the low (n even) or high half of k-step n/2.
      pa[n / 2][(n & 1) * 2 + 0] = pack(e16[0], e16[1]);
      pa[n / 2][(n & 1) * 2 + 1] = pack(e16[2], e16[3]);
    }
    SIMT_UNROLL
    for (int r = 0; r < 2; ++r) {
      tileSum[r] += simt::shflXor(tileSum[r], 1);
      tileSum[r] += simt::shflXor(tileSum[r], 2);
      l[r] = l[r] * alpha[r] + tileSum[r];
    }
    SIMT_UNROLL
    for (int n = 0; n < D / 8; ++n) {
      o[n][0] *= alpha[0];
      o[n][1] *= alpha[0];
      o[n][2] *= alpha[1];
      o[n][3] *= alpha[1];
    }

    // o += P·v: one transposing ldmatrix brings the B fragments of two head-dim tiles for one
    // k-step: matrix i holds keys kt*16 + (i%2)*8 .. +7 and head dims (2*n2 + i/2)*8 .. +7.
    SIMT_UNROLL
    for (int kt = 0; kt < kFlashKeys / 16; ++kt) {
      const uint16_t *vrow = vs + (kt * 16 + (ldMatrix & 1) * 8 + ldRow) * kStride + (ldMatrix >> 1) * 8;
      SIMT_UNROLL
      for (int n2 = 0; n2 < D / 16; ++n2) {
        uint32_t vb[4];
        simt::ldmatrixX4<true>(vb, vrow + n2 * 16);
        simt::mmaM16n8k16<Bf16>(o[2 * n2], pa[kt], vb);
        simt::mmaM16n8k16<Bf16>(o[2 * n2 + 1], pa[kt], vb + 2);
      }
    }
    simt::syncThreads(); // every warp is done with stage t % 2 before tile t + 2 lands there
  }

  const float inv[2] = {l[0] > 0.0f ? 1.0f / l[0] : 0.0f, l[1] > 0.0f ? 1.0f / l[1] : 0.0f};
  SIMT_UNROLL
  for (int n = 0; n < D / 8; ++n) {
    const int c = n * 8 + inGroup * 2;
    if (row0 < p.S)
      *reinterpret_cast<uint32_t *>(y + row0 * D + c) =
          pack(round16<Bf16>(o[n][0] * inv[0]), round16<Bf16>(o[n][1] * inv[0]));
    if (row1 < p.S)
      *reinterpret_cast<uint32_t *>(y + row1 * D + c) =
          pack(round16<Bf16>(o[n][2] * inv[1]), round16<Bf16>(o[n][3] * inv[1]));
  }
}

} // namespace shardc::kernels
