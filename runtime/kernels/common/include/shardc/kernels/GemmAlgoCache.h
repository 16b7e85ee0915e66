// CublasLtGemm's algorithm cache, in plain C++: the key of a planned GEMM (everything
// cuBLASLt's heuristic sees) and a map from keys to what the CUDA glue keeps per problem
// (descriptors and the chosen algorithm), with hit and miss counters. Tested on the CPU.
#pragma once

#include "shardc/kernels/GemmPlan.h"

#include <array>
#include <cstddef>
#include <cstdint>
#include <unordered_map>
#include <utility>

namespace shardc::kernels {

// The byte alignment of a pointer: the largest power of two dividing it, capped at 256
// (cuBLASLt's default assumption); 256 for null. The heuristic may pick kernels that rely on
// the alignment it is told, so an algorithm is only reused for pointers aligned as well.
uint32_t alignmentOf(const void *p);

struct GemmAlignment {
  uint32_t a = 256, b = 256, c = 256, d = 256, bias = 256; // cuBLASLt's operands A, B, C, D
};

struct GemmAlgoKey {
  static constexpr size_t kFields = 38;
  std::array<int64_t, kFields> fields{};
  bool operator==(const GemmAlgoKey &o) const { return fields == o.fields; }
  bool operator!=(const GemmAlgoKey &o) const { return fields != o.fields; }
};

struct GemmAlgoKeyHash {
  size_t operator()(const GemmAlgoKey &key) const;
};

// The key of `plan` for pointers aligned as `align` (cuBLASLt's A, B, C, D, that is plan.first,
// plan.second, C, D): shapes, transposes, the four layouts (types, leading dims, batch counts
// and strides), epilogue, bias type, compute and scale types and the alignments. Not alpha and
// beta, which the heuristic never sees; the bias alignment counts only when the epilogue reads
// a bias.
GemmAlgoKey gemmAlgoKey(const GemmPlan &plan, const GemmAlignment &align);

// One Entry per key. Not thread-safe: one cache per CublasLtGemm, one of those per stream's
// thread (as the backend's cuBLAS handles).
template <typename Entry> class GemmAlgoCache {
public:
  // The entry for `key` or nullptr, counted as a hit or a miss.
  Entry *find(const GemmAlgoKey &key) {
    auto it = entries_.find(key);
    if (it == entries_.end()) {
      ++misses_;
      return nullptr;
    }
    ++hits_;
    return &it->second;
  }
  Entry &insert(const GemmAlgoKey &key, Entry entry) {
    return entries_.insert_or_assign(key, std::move(entry)).first->second;
  }
  size_t size() const { return entries_.size(); }
  uint64_t hits() const { return hits_; }
  uint64_t misses() const { return misses_; }
  void clear() {
    entries_.clear();
    hits_ = misses_ = 0;
  }

private:
  std::unordered_map<GemmAlgoKey, Entry, GemmAlgoKeyHash> entries_;
  uint64_t hits_ = 0, misses_ = 0;
};

} // namespace shardc::kernels
