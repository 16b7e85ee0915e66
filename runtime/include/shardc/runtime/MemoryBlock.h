// An owned, move-only block of memory released by the function it was made with: backend
// allocations (the arena, bound weights) and the artifact's blob share this one type.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <utility>

namespace shardc::rt {

class MemoryBlock {
public:
  // Every block the runtime hands to kernels is aligned this much (the artifact's 64).
  static constexpr size_t kAlignment = 64;

  MemoryBlock() = default;
  MemoryBlock(void *data, size_t size, void (*release)(void *))
      : data_(static_cast<uint8_t *>(data)), size_(size), release_(release) {}
  MemoryBlock(MemoryBlock &&o) noexcept { *this = std::move(o); }
  MemoryBlock &operator=(MemoryBlock &&o) noexcept {
    if (this != &o) {
      reset();
      data_ = std::exchange(o.data_, nullptr);
      size_ = std::exchange(o.size_, 0);
      release_ = std::exchange(o.release_, nullptr);
    }
    return *this;
  }
  MemoryBlock(const MemoryBlock &) = delete;
  MemoryBlock &operator=(const MemoryBlock &) = delete;
  ~MemoryBlock() { reset(); }

  // Zero-filled, 64-byte aligned host memory; an empty block when the allocation fails.
  // A zero-byte request still yields a valid pointer so that empty tensors have an address.
  static MemoryBlock allocateHost(size_t size) {
    if (size > SIZE_MAX - kAlignment)
      return {};
    size_t rounded = (size + kAlignment - 1) / kAlignment * kAlignment;
    if (rounded == 0)
      rounded = kAlignment;
    void *p = std::aligned_alloc(kAlignment, rounded);
    if (!p)
      return {};
    std::memset(p, 0, rounded);
    return MemoryBlock(p, size, [](void *q) { std::free(q); });
  }

  uint8_t *data() const { return data_; }
  size_t size() const { return size_; }
  explicit operator bool() const { return data_ != nullptr; }

private:
  void reset() {
    if (data_ && release_)
      release_(data_);
    data_ = nullptr;
    size_ = 0;
  }

  uint8_t *data_ = nullptr;
  size_t size_ = 0;
  void (*release_)(void *) = nullptr;
};

} // namespace shardc::rt
