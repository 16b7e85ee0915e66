// The host side of Simt.h: a block's threads as ucontext fibers on the launching thread.
//
// A fiber runs until it reaches a barrier or a warp collective, or returns. A barrier opens
// when every thread of the block has arrived (a thread that returns while others wait, or
// before others arrive, is reported: CUDA leaves that undefined); a warp collective completes when
// the last lane of the warp arrives, which computes every lane's result at once. When no fiber
// can run and some have not returned, the block is stuck (a barrier or collective that some
// threads skipped): the launch fails naming the block and what each thread waits on.
#include "shardc/kernels/Simt.h"

#include <ucontext.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <memory>
#include <vector>

namespace shardc::simt {
namespace {

constexpr size_t kStackBytes = 256 * 1024;
constexpr size_t kSharedLimit = 228 * 1024; // an H100 block's shared-memory ceiling

enum class Wait : uint8_t { Running, Barrier, Warp, Done };
enum class Collective : uint8_t { None, Shuffle, MmaBf16, MmaF16, Ldmatrix, LdmatrixTrans };

struct AsyncCopy {
  void *dst;
  const void *src;
  bool valid;
};

struct Fiber {
  ucontext_t context;
  std::unique_ptr<char[]> stack;
  Wait wait = Wait::Running;
  size_t sharedCursor = 0; // this thread's next sharedBytes() offset
  std::vector<AsyncCopy> openGroup;                // cp.async issued since the last commit
  std::vector<std::vector<AsyncCopy>> inFlight;    // committed groups, oldest first
};

void land(const std::vector<AsyncCopy> &group) {
  for (const AsyncCopy &c : group) {
    if (c.valid)
      std::memcpy(c.dst, c.src, 16);
    else
      std::memset(c.dst, 0, 16);
  }
}

// One warp's collective in flight: what each lane brought, what each gets back.
struct WarpSlot {
  Collective kind = Collective::None;
  int arrived = 0;
  std::array<std::array<uint32_t, 8>, 32> in{};
  std::array<std::array<uint32_t, 4>, 32> out{};
};

struct Block {
  LaunchShape shape;
  int bx = 0, by = 0;
  const std::function<void()> *body = nullptr;
  std::vector<Fiber> fibers;
  ucontext_t scheduler;
  int current = 0;
  int barrierArrived = 0;
  std::vector<WarpSlot> warps;
  std::vector<unsigned char> shared;
  size_t sharedUsed = 0;
  std::string error;
};

thread_local Block *tlsBlock = nullptr;
thread_local CopyLanding copyLanding = CopyLanding::Late;
thread_local Schedule schedule = Schedule::Interleaved;

Block &block() { return *tlsBlock; }

int liveThreads(const Block &b) {
  int n = 0;
  for (const Fiber &f : b.fibers)
    n += f.wait != Wait::Done;
  return n;
}

void suspend() {
  Block &b = block();
  swapcontext(&b.fibers[size_t(b.current)].context, &b.scheduler);
}

void fiberMain() {
  Block &b = block();
  (*b.body)();
  Fiber &self = b.fibers[size_t(b.current)];
  for (const auto &group : self.inFlight) // a GPU finishes them too; nobody can wait on them now
    land(group);
  land(self.openGroup);
  self.inFlight.clear();
  self.openGroup.clear();
  self.wait = Wait::Done;
  // CUDA leaves a barrier that not every thread of the block reaches undefined (it may hang):
  // report it rather than pick a behaviour.
  if (b.barrierArrived > 0 && b.error.empty())
    b.error = "thread " + std::to_string(b.current) + " returned while " +
              std::to_string(b.barrierArrived) + " threads wait at a barrier";
  // uc_link returns to the scheduler.
}

uint16_t half(uint32_t reg, int which) { return uint16_t(which ? reg >> 16 : reg & 0xffffu); }

float toFloat(bool bf16, uint16_t bits) {
  uint32_t u;
  if (bf16) {
    u = uint32_t(bits) << 16;
  } else { // IEEE binary16
    const uint32_t sign = uint32_t(bits & 0x8000u) << 16, e = (bits >> 10) & 0x1fu, m = bits & 0x3ffu;
    if (e == 0x1fu)
      u = sign | 0x7f800000u | (m << 13);
    else if (e != 0)
      u = sign | ((e + 112u) << 23) | (m << 13);
    else {
      float f = float(m) * 5.9604644775390625e-8f; // m * 2^-24
      std::memcpy(&u, &f, 4);
      u |= sign;
    }
  }
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

void completeMma(WarpSlot &w, bool bf16) {
  float A[16][16], B[16][8], C[16][8];
  for (int lane = 0; lane < 32; ++lane) {
    const auto &in = w.in[size_t(lane)];
    for (int i = 0; i < 8; ++i) {
      RowCol rc = mmaFragmentA(lane, i);
      A[rc.row][rc.col] = toFloat(bf16, half(in[size_t(i / 2)], i % 2));
    }
    for (int i = 0; i < 4; ++i) {
      RowCol rc = mmaFragmentB(lane, i);
      B[rc.row][rc.col] = toFloat(bf16, half(in[size_t(4 + i / 2)], i % 2));
    }
  }
  // The accumulators arrive through `out` (each lane stored its c0..c3 there).
  for (int lane = 0; lane < 32; ++lane)
    for (int i = 0; i < 4; ++i) {
      RowCol rc = mmaFragmentC(lane, i);
      std::memcpy(&C[rc.row][rc.col], &w.out[size_t(lane)][size_t(i)], 4);
    }
  for (int lane = 0; lane < 32; ++lane)
    for (int i = 0; i < 4; ++i) {
      RowCol rc = mmaFragmentC(lane, i);
      float acc = C[rc.row][rc.col];
      for (int k = 0; k < 16; ++k)
        acc += A[rc.row][k] * B[k][rc.col];
      std::memcpy(&w.out[size_t(lane)][size_t(i)], &acc, 4);
    }
}

// Each lane brought a row address (in[0..1]); matrix i's rows come from lanes 8i..8i+7.
void completeLdmatrix(WarpSlot &w, bool trans) {
  uint16_t m[4][8][8];
  for (int lane = 0; lane < 32; ++lane) {
    uint64_t address = uint64_t(w.in[size_t(lane)][0]) | (uint64_t(w.in[size_t(lane)][1]) << 32);
    std::memcpy(m[lane / 8][lane % 8], reinterpret_cast<const void *>(uintptr_t(address)), 16);
  }
  for (int lane = 0; lane < 32; ++lane)
    for (int i = 0; i < 4; ++i) {
      const int a = lane / 4, b = 2 * (lane % 4);
      const uint16_t lo = trans ? m[i][b][a] : m[i][a][b], hi = trans ? m[i][b + 1][a] : m[i][a][b + 1];
      w.out[size_t(lane)][size_t(i)] = uint32_t(lo) | (uint32_t(hi) << 16);
    }
}

// Brings this lane's part of a warp collective; returns when the warp's result is in.
const std::array<uint32_t, 4> &warpCollective(Collective kind, const uint32_t *in, int nin,
                                              const uint32_t *acc, int nacc) {
  Block &b = block();
  const int tid = b.current, lane = tid % 32;
  WarpSlot &w = b.warps[size_t(tid / 32)];
  if (w.arrived == 0)
    w.kind = kind;
  else if (w.kind != kind && b.error.empty())
    b.error = "lanes of warp " + std::to_string(tid / 32) + " met different warp collectives";
  std::copy(in, in + nin, w.in[size_t(lane)].begin());
  std::copy(acc, acc + nacc, w.out[size_t(lane)].begin());
  if (++w.arrived < 32) {
    b.fibers[size_t(tid)].wait = Wait::Warp;
    suspend();
    return w.out[size_t(lane)];
  }
  w.arrived = 0;
  switch (kind) {
  case Collective::Shuffle:
    for (int l = 0; l < 32; ++l)
      w.out[size_t(l)][0] = w.in[size_t(l ^ int(w.in[size_t(l)][1] & 31u))][0];
    break;
  case Collective::MmaBf16: completeMma(w, true); break;
  case Collective::MmaF16: completeMma(w, false); break;
  case Collective::Ldmatrix:
  case Collective::LdmatrixTrans:
    completeLdmatrix(w, kind == Collective::LdmatrixTrans);
    break;
  case Collective::None: break;
  }
  for (int l = 0; l < 32; ++l) {
    Fiber &f = b.fibers[size_t(tid - lane + l)];
    if (f.wait == Wait::Warp)
      f.wait = Wait::Running;
  }
  return w.out[size_t(lane)];
}

std::string describeStuck(const Block &b) {
  int barrier = 0, warp = 0, done = 0;
  for (const Fiber &f : b.fibers) {
    barrier += f.wait == Wait::Barrier;
    warp += f.wait == Wait::Warp;
    done += f.wait == Wait::Done;
  }
  return "block (" + std::to_string(b.bx) + "," + std::to_string(b.by) + ") is stuck: " +
         std::to_string(barrier) + " threads wait at a barrier, " + std::to_string(warp) +
         " at a warp collective, " + std::to_string(done) + " returned";
}

// Sets `f` to start at fiberMain and return to `scheduler`. Not inlined: getcontext returns
// twice as far as the compiler knows, which would pin the launch loop's variables.
__attribute__((noinline)) bool startFiber(Fiber &f, ucontext_t &scheduler, size_t dynamicBytes) {
  f.wait = Wait::Running;
  f.sharedCursor = dynamicBytes;
  f.openGroup.clear();
  f.inFlight.clear();
  if (getcontext(&f.context) != 0)
    return false;
  f.context.uc_stack.ss_sp = f.stack.get();
  f.context.uc_stack.ss_size = kStackBytes;
  f.context.uc_link = &scheduler;
  makecontext(&f.context, fiberMain, 0);
  return true;
}

} // namespace

RowCol mmaFragmentA(int lane, int i) {
  const int group = lane >> 2, inGroup = lane & 3;
  const int row = (i < 2 || (i >= 4 && i < 6)) ? group : group + 8;
  const int col = inGroup * 2 + (i & 1) + (i >= 4 ? 8 : 0);
  return {row, col};
}
RowCol mmaFragmentB(int lane, int i) {
  const int group = lane >> 2, inGroup = lane & 3;
  return {inGroup * 2 + (i & 1) + (i >= 2 ? 8 : 0), group};
}
RowCol mmaFragmentC(int lane, int i) {
  const int group = lane >> 2, inGroup = lane & 3;
  return {i < 2 ? group : group + 8, inGroup * 2 + (i & 1)};
}

std::string launch(const LaunchShape &shape, const std::function<void()> &body) {
  if (shape.blockX <= 0 || shape.blockX % 32 != 0 || shape.blockX > 1024)
    return "simt: a block of " + std::to_string(shape.blockX) +
           " threads (a multiple of 32 up to 1024 is required)";
  if (shape.gridX <= 0 || shape.gridY <= 0)
    return "simt: an empty grid";
  if (tlsBlock)
    return "simt: launch from inside a kernel";
  Block b;
  b.shape = shape;
  b.body = &body;
  b.fibers.resize(size_t(shape.blockX));
  for (Fiber &f : b.fibers)
    f.stack = std::make_unique<char[]>(kStackBytes);
  b.warps.resize(size_t(shape.blockX / 32));
  b.shared.resize(kSharedLimit);
  const size_t dynamic = (shape.dynamicShared + 15) / 16 * 16;
  if (dynamic > kSharedLimit)
    return "simt: " + std::to_string(shape.dynamicShared) + " bytes of dynamic shared memory exceed " +
           std::to_string(kSharedLimit);
  tlsBlock = &b;
  std::string error;
  for (int by = 0; by < shape.gridY && error.empty(); ++by)
    for (int bx = 0; bx < shape.gridX && error.empty(); ++bx) {
      b.bx = bx;
      b.by = by;
      b.barrierArrived = 0;
      b.sharedUsed = dynamic;
      std::fill(b.shared.begin(), b.shared.end(), 0xA5); // shared memory starts as garbage
      for (WarpSlot &w : b.warps)
        w = WarpSlot{};
      for (Fiber &f : b.fibers)
        if (!startFiber(f, b.scheduler, dynamic)) {
          error = "simt: getcontext failed";
          break;
        }
      // Interleaved: round-robin over all runnable threads (warps keep within a collective of
      // each other). WarpByWarp: a warp runs until all its threads wait at a barrier or
      // return before the next warp starts (warps as far apart as barriers allow).
      while (error.empty() && b.error.empty()) {
        bool ran = false;
        const int warps = shape.blockX / 32;
        for (int w = 0; w < warps && b.error.empty(); ++w) {
          bool again = true;
          while (again && b.error.empty()) {
            again = false;
            for (int t = w * 32; t < w * 32 + 32; ++t) {
              if (b.fibers[size_t(t)].wait != Wait::Running)
                continue;
              b.current = t;
              ran = true;
              again = schedule == Schedule::WarpByWarp;
              swapcontext(&b.scheduler, &b.fibers[size_t(t)].context);
              if (!b.error.empty())
                break;
            }
          }
        }
        if (liveThreads(b) == 0)
          break;
        if (!ran)
          error = "simt: " + describeStuck(b);
      }
      if (error.empty() && !b.error.empty())
        error = "simt: block (" + std::to_string(bx) + "," + std::to_string(by) + "): " + b.error;
    }
  tlsBlock = nullptr;
  return error;
}

int threadIdxX() { return block().current; }
int blockDimX() { return block().shape.blockX; }
int blockIdxX() { return block().bx; }
int blockIdxY() { return block().by; }

void syncThreads() {
  Block &b = block();
  Fiber &self = b.fibers[size_t(b.current)];
  if (liveThreads(b) < b.shape.blockX) {
    if (b.error.empty())
      b.error = "thread " + std::to_string(b.current) +
                " reached a barrier that returned threads of its block will not reach";
    self.wait = Wait::Barrier;
    suspend();
    return;
  }
  if (++b.barrierArrived == b.shape.blockX) {
    for (Fiber &f : b.fibers)
      if (f.wait == Wait::Barrier)
        f.wait = Wait::Running;
    b.barrierArrived = 0;
    return;
  }
  self.wait = Wait::Barrier;
  suspend();
}

float shflXor(float v, int laneMask) {
  uint32_t in[2];
  std::memcpy(&in[0], &v, 4);
  in[1] = uint32_t(laneMask);
  const auto &out = warpCollective(Collective::Shuffle, in, 2, nullptr, 0);
  float r;
  std::memcpy(&r, &out[0], 4);
  return r;
}

void *sharedBytes(size_t bytes, size_t align) {
  Block &b = block();
  Fiber &self = b.fibers[size_t(b.current)];
  size_t offset = (self.sharedCursor + align - 1) / align * align;
  if (offset + bytes > b.shared.size()) {
    if (b.error.empty())
      b.error = "more than " + std::to_string(b.shared.size()) + " bytes of shared memory";
    offset = 0;
  }
  self.sharedCursor = offset + bytes;
  b.sharedUsed = std::max(b.sharedUsed, self.sharedCursor);
  return b.shared.data() + offset;
}

void mmaM16n8k16Emulated(bool bf16, float d[4], const uint32_t a[4], const uint32_t b[2]) {
  uint32_t in[6] = {a[0], a[1], a[2], a[3], b[0], b[1]};
  uint32_t acc[4];
  std::memcpy(acc, d, 16);
  const auto &out = warpCollective(bf16 ? Collective::MmaBf16 : Collective::MmaF16, in, 6, acc, 4);
  std::memcpy(d, out.data(), 16);
}

} // namespace shardc::simt

namespace shardc::simt {

void ldmatrixX4Emulated(bool trans, uint32_t r[4], const void *rowAddress) {
  uint64_t address = uint64_t(reinterpret_cast<uintptr_t>(rowAddress));
  Block &b = block();
  const uint8_t *base = b.shared.data(), *row = static_cast<const uint8_t *>(rowAddress);
  const char *bad = address % 16 != 0                                  ? "is not 16-byte aligned"
                    : row < base || row + 16 > base + b.sharedUsed ? "is not in the block's shared memory"
                                                                       : nullptr;
  if (bad) { // reported; the warp reads the shared base instead of the bad address
    if (b.error.empty())
      b.error = "ldmatrix row address of thread " + std::to_string(b.current) + " " + bad;
    address = uint64_t(reinterpret_cast<uintptr_t>(base));
  }
  const uint32_t in[2] = {uint32_t(address), uint32_t(address >> 32)};
  const auto &out = warpCollective(trans ? Collective::LdmatrixTrans : Collective::Ldmatrix, in, 2, nullptr, 0);
  std::memcpy(r, out.data(), 16);
}

} // namespace shardc::simt

namespace shardc::simt {

void setCopyLanding(CopyLanding landing) { copyLanding = landing; }
void setSchedule(Schedule s) { schedule = s; }

void *dynamicShared() { return block().shared.data(); }

void cpAsync16(void *sharedDst, const void *globalSrc, bool valid) {
  Block &b = block();
  const auto *dst = static_cast<const unsigned char *>(sharedDst);
  if ((dst < b.shared.data() || dst + 16 > b.shared.data() + b.sharedUsed ||
       reinterpret_cast<uintptr_t>(sharedDst) % 16 != 0 ||
       (valid && reinterpret_cast<uintptr_t>(globalSrc) % 16 != 0))) {
    if (b.error.empty())
      b.error = "cp.async of thread " + std::to_string(b.current) +
                ": a destination outside shared memory or an address not 16-byte aligned";
    return;
  }
  if (copyLanding == CopyLanding::Early)
    land({{sharedDst, globalSrc, valid}});
  else
    b.fibers[size_t(b.current)].openGroup.push_back({sharedDst, globalSrc, valid});
}

void cpAsyncCommit() {
  Fiber &self = block().fibers[size_t(block().current)];
  self.inFlight.push_back(std::move(self.openGroup));
  self.openGroup.clear();
}

void cpAsyncWaitGroups(int pending) {
  Fiber &self = block().fibers[size_t(block().current)];
  while (self.inFlight.size() > size_t(std::max(pending, 0))) {
    land(self.inFlight.front());
    self.inFlight.erase(self.inFlight.begin());
  }
}

} // namespace shardc::simt
