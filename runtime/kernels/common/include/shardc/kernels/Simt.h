// A small SIMT vocabulary for hand-written kernels whose one source must also run on the CPU.
//
// Under a CUDA compiler the names below are CUDA's builtins and PTX instructions. On the host
// they are an emulator: a launch runs each block's threads as fibers on the calling thread,
// switching at every barrier and warp collective, so block barriers, shared memory, warp
// shuffles and the warp-wide tensor-core MMA behave as a GPU's do (the MMA fragments follow
// the PTX ISA's layouts for mma.m16n8k16). The CPU tests run the very kernel the GPU runs;
// only speed differs. The emulator also catches what a GPU would hang or misbehave on: a
// barrier that some threads of a block skip, a warp collective that some lanes skip.
//
// Kernels use: SIMT_DEVICE functions, SIMT_SHARED(type, name, count) arrays, SIMT_UNROLL before loops of constant trip count, the index
// functions, syncThreads(), shflXor(), mmaM16n8k16<bf16?>(), ldmatrixX4<trans?>(),
// SIMT_DYNAMIC_SHARED, cpAsync16() with cpAsyncCommit() and cpAsyncWait<N>(). Blocks are one-dimensional
// (blockDim.x threads, a multiple of 32); grids are two-dimensional.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)

#define SIMT_DEVICE __device__ __forceinline__
#define SIMT_HOST_DEVICE __host__ __device__ __forceinline__
#define SIMT_SHARED(T, name, count) __shared__ __align__(16) T name[count]
#define SIMT_UNROLL _Pragma("unroll")

namespace shardc::simt {

SIMT_DEVICE int threadIdxX() { return int(threadIdx.x); }
SIMT_DEVICE int blockDimX() { return int(blockDim.x); }
SIMT_DEVICE int blockIdxX() { return int(blockIdx.x); }
SIMT_DEVICE int blockIdxY() { return int(blockIdx.y); }
SIMT_DEVICE void syncThreads() { __syncthreads(); }
SIMT_DEVICE float shflXor(float v, int laneMask) { return __shfl_xor_sync(0xffffffffu, v, laneMask); }

// d += A·B for one 16x16 (row-major) by 16x8 (column-major) tile of 16-bit floats with f32
// accumulation, a warp-wide instruction. Fragments as the PTX ISA lays them out: a[4] holds
// A's elements a0..a7 in pairs, b[2] B's b0..b3, d[4] the accumulator's c0..c3.
template <bool Bf16>
SIMT_DEVICE void mmaM16n8k16(float d[4], const uint32_t a[4], const uint32_t b[2]) {
  if constexpr (Bf16)
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, "
                 "{%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
  else
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, "
                 "{%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

// The launch's dynamic shared memory (its size is the launch's third parameter).
#define SIMT_DYNAMIC_SHARED(T, name)                                                       \
  extern __shared__ __align__(16) unsigned char simt_dynamic_shared_[];                     \
  T *name = reinterpret_cast<T *>(simt_dynamic_shared_)

// cp.async: 16 bytes from global to shared memory without passing through registers, zeros
// when !valid; completes in groups: commit closes the group of this thread's copies issued
// since the last commit, wait<N> returns when at most N of its groups are still in flight.
// Other threads see the bytes only after a barrier that follows the wait.
SIMT_DEVICE void cpAsync16(void *sharedDst, const void *globalSrc, bool valid) {
  const unsigned dst = unsigned(__cvta_generic_to_shared(sharedDst));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(globalSrc), "r"(valid ? 16 : 0));
}
SIMT_DEVICE void cpAsyncCommit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N> SIMT_DEVICE void cpAsyncWait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

// ldmatrix .x4: four 8x8 matrices of 16-bit elements from shared memory, lanes 8i..8i+7
// giving the addresses of matrix i's rows (16 bytes each, 16-byte aligned). Lane l receives
// in r[i] the elements (l/4, 2(l%4)) and (l/4, 2(l%4)+1) of matrix i; with Trans, the
// elements (2(l%4), l/4) and (2(l%4)+1, l/4).
template <bool Trans>
SIMT_DEVICE void ldmatrixX4(uint32_t r[4], const void *rowAddress) {
  const unsigned addr = unsigned(__cvta_generic_to_shared(rowAddress));
  if constexpr (Trans)
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(addr));
  else
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(addr));
}

} // namespace shardc::simt

#else // the host emulator

#include <cstddef>
#include <functional>
#include <string>

#define SIMT_DEVICE inline
#define SIMT_HOST_DEVICE inline
#define SIMT_SHARED(T, name, count) T *name = ::shardc::simt::sharedArray<T>(count)
#define SIMT_UNROLL
#define SIMT_DYNAMIC_SHARED(T, name) T *name = static_cast<T *>(::shardc::simt::dynamicShared())

namespace shardc::simt {

struct LaunchShape {
  int gridX = 1, gridY = 1;
  int blockX = 32;          // threads per block, a multiple of 32, at most 1024
  size_t dynamicShared = 0; // bytes of SIMT_DYNAMIC_SHARED memory
};

// Runs `body` once per thread of every block, blocks one after another, a block's threads as
// fibers. Returns "" or a one-line error (a barrier or warp collective that not every thread
// reached, a bad shape, or a fiber that could not be made).
[[nodiscard]] std::string launch(const LaunchShape &shape, const std::function<void()> &body);

int threadIdxX();
int blockDimX();
int blockIdxX();
int blockIdxY();
void syncThreads();
float shflXor(float v, int laneMask);

// The block's shared memory: every thread's n-th call returns the same array.
void *sharedBytes(size_t bytes, size_t align);
template <typename T> T *sharedArray(size_t count) {
  return static_cast<T *>(sharedBytes(count * sizeof(T), alignof(T) < 16 ? 16 : alignof(T)));
}

// The launch's dynamic shared memory (LaunchShape::dynamicShared bytes, 16-byte aligned).
void *dynamicShared();

// cp.async (see the CUDA side). A copy lands when a wait retires its group, not before:
// until then the destination keeps its old bytes, so a missing wait or barrier reads stale
// data here as it may on a GPU.
void cpAsync16(void *sharedDst, const void *globalSrc, bool valid);
void cpAsyncCommit();
void cpAsyncWaitGroups(int pending);
template <int N> inline void cpAsyncWait() { cpAsyncWaitGroups(N); }
// When copies land on this thread's launches: Late (at the wait that retires them: catches a
// missing wait or barrier before a read) or Early (at issue: catches a missing barrier before
// a stage is overwritten while others still read it). Tests run kernels both ways.
enum class CopyLanding { Late, Early };
void setCopyLanding(CopyLanding landing);
// How this thread's launches interleave a block's warps: Interleaved (round-robin over
// threads) or WarpByWarp (each warp runs until it waits at a barrier, so warps drift apart as
// far as the barriers allow: with Early landing, a stage refilled before the barrier that
// should protect it is caught).
enum class Schedule { Interleaved, WarpByWarp };
void setSchedule(Schedule schedule);

// The warp-wide MMA, computed once for the warp when its last lane arrives (f32 sums in k
// order; the tensor cores' internal order may differ in the last bits).
void mmaM16n8k16Emulated(bool bf16, float d[4], const uint32_t a[4], const uint32_t b[2]);
template <bool Bf16> inline void mmaM16n8k16(float d[4], const uint32_t a[4], const uint32_t b[2]) {
  mmaM16n8k16Emulated(Bf16, d, a, b);
}

// ldmatrix .x4 (see the CUDA side): a warp collective on the rows' addresses.
void ldmatrixX4Emulated(bool trans, uint32_t r[4], const void *rowAddress);
template <bool Trans> inline void ldmatrixX4(uint32_t r[4], const void *rowAddress) {
  ldmatrixX4Emulated(Trans, r, rowAddress);
}

// The element (row, col) of each operand that fragment element i of `lane` holds, as the PTX
// ISA defines them for mma.m16n8k16 with .f16/.bf16 inputs (A: i in 0..7, B: i in 0..3,
// C/D: i in 0..3). The emulator uses these; tests check them against a plain product.
struct RowCol {
  int row, col;
};
RowCol mmaFragmentA(int lane, int i);
RowCol mmaFragmentB(int lane, int i);
RowCol mmaFragmentC(int lane, int i);

} // namespace shardc::simt

#endif
