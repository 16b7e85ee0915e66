// The in-process communicator: a rendezvous per group under one mutex. Waits are bounded by
// the timeout and name exactly the members that did not arrive; a failed rank wakes everyone.
#include "shardc/comm/LocalCommunicator.h"

#include <cstring>

namespace shardc::rt {

void LocalWorld::abort(int64_t rank, const std::string &reason) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (failedRank_ < 0) {
    failedRank_ = rank;
    failure_ = reason;
  }
  changed_.notify_all();
}

std::string LocalWorld::failure() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return failedRank_ < 0 ? "" : "rank " + std::to_string(failedRank_) + " failed: " + failure_;
}

template <typename Compute>
std::string LocalCommunicator::meet(const CommGroup &g, const std::string &kind, const void *in,
                                    void *out, size_t outBytes, Compute compute) {
  LocalWorld &w = *world_;
  const uint64_t generation = nextGeneration_[g.ranks]++;
  const auto deadline = std::chrono::steady_clock::now() + timeout();
  const size_t size = static_cast<size_t>(g.size()), me = static_cast<size_t>(g.index);

  std::unique_lock<std::mutex> lock(w.mutex_);
  LocalWorld::Rendezvous &rv = w.rendezvous_[g.ranks];
  if (rv.present.empty()) {
    rv.present.assign(size, false);
    rv.done.assign(size, false);
    rv.inputs.assign(size, nullptr);
  }
  auto failure = [&] {
    return "rank " + std::to_string(w.failedRank_) + " failed: " + w.failure_;
  };
  // False on timeout or failure; the caller tells which.
  auto waitUntil = [&](auto ready) {
    return w.changed_.wait_until(lock, deadline, [&] { return w.failedRank_ >= 0 || ready(); }) &&
           w.failedRank_ < 0;
  };
  auto absent = [&](const std::vector<bool> &flags) {
    std::vector<int64_t> ranks;
    for (size_t j = 0; j < size; ++j)
      if (!flags[j])
        ranks.push_back(g.ranks[j]);
    return (ranks.size() == 1 ? "rank " : "ranks ") + rankList(ranks);
  };
  auto timedOut = [&](const std::string &what) {
    if (w.failedRank_ >= 0)
      return failure();
    return "timed out after " + formatDuration(timeout()) + " on group " + g.describe() + ": " +
           what;
  };

  // A member may still be leaving the previous collective on this group.
  if (!waitUntil([&] { return rv.generation == generation; }))
    return timedOut("the previous collective on this group did not end");
  if (rv.arrived == 0) {
    rv.kind = kind;
  } else if (rv.kind != kind) {
    std::string err = "collective mismatch on group " + g.describe() + ": this rank called " +
                      kind + ", another member " + rv.kind;
    w.failedRank_ = rank();
    w.failure_ = err;
    w.changed_.notify_all();
    return err;
  }
  rv.inputs[me] = in;
  rv.present[me] = true;
  ++rv.arrived;
  w.changed_.notify_all();
  if (!waitUntil([&] { return rv.arrived == static_cast<int64_t>(size); }))
    return timedOut(absent(rv.present) + " did not arrive");

  std::vector<const void *> inputs = rv.inputs;
  lock.unlock();
  result_.resize(outBytes);
  compute(inputs.data(), result_.data());
  lock.lock();

  rv.done[me] = true;
  ++rv.finished;
  w.changed_.notify_all();
  // Inputs stay readable until every member has finished with them.
  if (!waitUntil([&] { return rv.finished == static_cast<int64_t>(size); }))
    return timedOut(absent(rv.done) + " did not finish reading");
  if (++rv.left == static_cast<int64_t>(size)) {
    rv.arrived = rv.finished = rv.left = 0;
    rv.present.assign(size, false);
    rv.done.assign(size, false);
    rv.inputs.assign(size, nullptr);
    rv.kind.clear();
    ++rv.generation;
    w.changed_.notify_all();
  }
  lock.unlock();
  if (outBytes)
    std::memcpy(out, result_.data(), outBytes);
  return "";
}

namespace {

std::string kindOf(const char *op, DType dtype, int64_t count, const char *reduce = nullptr) {
  return std::string(op) + (reduce ? std::string("(") + reduce + ")" : "") + " of " +
         std::to_string(count) + " " + dtypeName(dtype);
}

std::string notReducible(const char *op, DType dtype) {
  return std::string(op) + " of " + dtypeName(dtype) +
         " is not supported (f32, f64, bf16, f16, i64, i32)";
}

} // namespace

std::string LocalCommunicator::allReduce(const CommGroup &g, const void *in, void *out,
                                         int64_t count, DType dtype, ReduceOp op) {
  if (!isReducible(dtype))
    return notReducible("all_reduce", dtype);
  size_t bytes = static_cast<size_t>(count) * dtypeSize(dtype);
  return meet(g, kindOf("all_reduce", dtype, count, reduceOpName(op)), in, out, bytes,
              [&](const void *const *inputs, uint8_t *result) {
                reduceInOrder(dtype, op, inputs, static_cast<size_t>(g.size()), count, result);
              });
}

std::string LocalCommunicator::allGather(const CommGroup &g, const void *in, void *out,
                                         int64_t count, DType dtype) {
  size_t bytes = static_cast<size_t>(count) * dtypeSize(dtype);
  return meet(g, kindOf("all_gather", dtype, count), in, out, bytes * static_cast<size_t>(g.size()),
              [&](const void *const *inputs, uint8_t *result) {
                for (int64_t j = 0; j < g.size(); ++j)
                  if (bytes)
                    std::memcpy(result + static_cast<size_t>(j) * bytes, inputs[j], bytes);
              });
}

std::string LocalCommunicator::reduceScatter(const CommGroup &g, const void *in, void *out,
                                             int64_t count, DType dtype, ReduceOp op) {
  if (!isReducible(dtype))
    return notReducible("reduce_scatter", dtype);
  size_t bytes = static_cast<size_t>(count) * dtypeSize(dtype);
  return meet(g, kindOf("reduce_scatter", dtype, count, reduceOpName(op)), in, out, bytes,
              [&](const void *const *inputs, uint8_t *result) {
                std::vector<const void *> chunks;
                for (int64_t j = 0; j < g.size(); ++j)
                  chunks.push_back(static_cast<const uint8_t *>(inputs[j]) +
                                   static_cast<size_t>(g.index) * bytes);
                reduceInOrder(dtype, op, chunks.data(), chunks.size(), count, result);
              });
}

std::string LocalCommunicator::allToAll(const CommGroup &g, const void *in, void *out,
                                        int64_t count, DType dtype) {
  size_t bytes = static_cast<size_t>(count) * dtypeSize(dtype);
  return meet(g, kindOf("all_to_all", dtype, count), in, out, bytes * static_cast<size_t>(g.size()),
              [&](const void *const *inputs, uint8_t *result) {
                for (int64_t j = 0; j < g.size(); ++j)
                  if (bytes)
                    std::memcpy(result + static_cast<size_t>(j) * bytes,
                                static_cast<const uint8_t *>(inputs[j]) +
                                    static_cast<size_t>(g.index) * bytes,
                                bytes);
              });
}

std::string LocalCommunicator::barrier(const CommGroup &g) {
  return meet(g, "barrier", nullptr, nullptr, 0, [](const void *const *, uint8_t *) {});
}

} // namespace shardc::rt
